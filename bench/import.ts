/**
 * `gleaner import` rows/s against a plain COPY of the same file, in the same run: psql's `\copy`
 * into an identical pipeline table (same state columns, indexes and triggers), so the difference
 * is Gleaner's own cost (header checks, the progress bar, the CopyData framing in Node).
 *
 *   node --import tsx bench/import.ts [rows] [repeats]
 *
 * Aim: within 20% of the plain COPY.
 */
import { execFileSync } from "node:child_process";
import { createWriteStream, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { once } from "node:events";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { createBenchDatabase, fmt } from "./support/bench-database.ts";

const ROWS = Number(process.argv[2] ?? 100_000);
const REPEATS = Number(process.argv[3] ?? 3);
const ROOT = new URL("..", import.meta.url).pathname;

const CONFIG = `
llm:
  backends: [{ name: fake, base_url: http://127.0.0.1:9/v1, model: fake }]
pipelines:
${["gleaner_copy", "plain_copy"]
  .map(
    (t) => `  ${t}:
    table: ${t}
    inputs: [name, domain, founded]
    outputs:
      industry: { type: text, description: "Primary industry" }
    stages:
      - { name: s, kind: llm, backends: [fake], prompt: "{{name}}", outputs: [industry] }`,
  )
  .join("\n")}
`;

async function main() {
  const db = await createBenchDatabase("import");
  const dir = mkdtempSync(join(tmpdir(), "gleaner-bench-import-"));
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  try {
    for (const t of ["gleaner_copy", "plain_copy"])
      await client.query(
        `create table ${t} (id bigint primary key, name text, domain text, founded integer, industry text)`,
      );
    const config = join(dir, "gleaner.yaml");
    writeFileSync(config, CONFIG);
    const env = { ...process.env, DATABASE_URL: db.url, GLEANER_LOG_LEVEL: "warn" };
    execFileSync(process.execPath, ["bin/gleaner.js", "migrate", "-c", config], { cwd: ROOT, env });

    const file = join(dir, "rows.csv");
    const out = createWriteStream(file);
    out.write("id,name,domain,founded\n");
    for (let i = 1; i <= ROWS; i++)
      if (!out.write(`${i},"Company ${i}, Inc.",company-${i}.example,${1900 + (i % 120)}\n`))
        await once(out, "drain");
    out.end();
    await once(out, "finish");

    const gleaner: number[] = [];
    const plain: number[] = [];
    for (let r = 0; r < REPEATS; r++) {
      await client.query("truncate gleaner_copy, plain_copy");
      // Gleaner's own figure times the COPY alone (not the process start-up).
      const stdout = execFileSync(
        process.execPath,
        ["bin/gleaner.js", "import", "gleaner_copy", file, "--json", "-c", config],
        { cwd: ROOT, env, stdio: ["ignore", "pipe", "ignore"] },
      ).toString();
      const result = JSON.parse(stdout) as { rows: number; seconds: number };
      if (result.rows !== ROWS) throw new Error(`imported ${result.rows} rows, not ${ROWS}`);
      gleaner.push(result.rows / result.seconds);

      const t = performance.now();
      execFileSync(
        "psql",
        [
          db.url,
          "-qc",
          `\\copy plain_copy (id, name, domain, founded) from '${file}' with (format csv, header true)`,
        ],
        { stdio: "ignore" },
      );
      plain.push(ROWS / ((performance.now() - t) / 1000));
    }
    const best = (xs: number[]) => Math.max(...xs);
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
    console.log(`${fmt(ROWS)} rows, ${REPEATS} runs each (rows/s, median / best)`);
    console.log(`  gleaner import:      ${fmt(median(gleaner))} / ${fmt(best(gleaner))}`);
    console.log(`  plain COPY (psql):   ${fmt(median(plain))} / ${fmt(best(plain))}`);
    console.log(`  ratio (median):      ${fmt(median(gleaner) / median(plain), 2)}`);
  } finally {
    await client.end();
    rmSync(dir, { recursive: true, force: true });
    await db.drop();
  }
}

await main();
