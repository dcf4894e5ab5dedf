import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { answerRows, keyInSection, startFakeLlm, type FakeLlm } from "./support/fake-llm-server.ts";
import { startHarness, type Harness } from "./support/gleaner-harness.ts";

/**
 * `gleaner eval` end to end through the command line, against a fake LLM that is right, wrong
 * or unsure on purpose, by row key (20 rows):
 * - key % 4 = 1: right, written differently: city in other case and spacing, employees 3% off
 *   (within the 5% tolerance), a full date inside the known founding year;
 * - key % 4 = 0: right, the city a synonym ("NYC" for "New York");
 * - key % 4 = 2: wrong; key % 4 = 3: unsure (no value).
 * So per column 15 filled, 10 right: precision 2/3, recall 1/2, coverage 3/4. The --against
 * config's model ("model-b") is always right.
 */
const ROOT = new URL("..", import.meta.url).pathname;
const ROWS = 20;
const CITIES = ["Leeds", "Bristol", "Cardiff", "Dundee", "Derby"];
const truth = (key: number) => ({
  city: key % 4 === 0 ? "New York" : (CITIES[key % CITIES.length] as string),
  employees: 100 * key,
  founded: String(1950 + key),
});

let llm: FakeLlm;
let h: Harness;
let dir: string;
let configFile: string;
let againstFile: string;
let golden: string;

const yaml = (model: string, rules: string) => `
llm:
  backends:
    - name: primary
      base_url: "${llm.url}"
      model: ${model}
      price: { input_per_million: 1, output_per_million: 2 }
pipelines:
  companies:
    table: companies
    inputs: [name]
    outputs:
      city: { type: text, description: "City of the headquarters" }
      employees: { type: integer, description: "Number of employees" }
      founded: { type: date, description: "Founding date" }
    min_confidence: 0.1
${rules}
    stages:
      - name: ask
        kind: llm
        backends: [primary]
        prompt: "Facts about {{name}} #{{id}}"
        outputs: [city, employees, founded]
`;

beforeAll(async () => {
  llm = await startFakeLlm();
  llm.handle((req) =>
    answerRows((id, prompt) => {
      const key = Number(keyInSection(prompt, id));
      const t = truth(key);
      const kind = req.model === "model-b" ? 1 : key % 4;
      const value = (v: unknown, confidence = 0.9) => ({ value: v, confidence });
      if (kind === 3)
        return { city: value(null, 0), employees: value(null, 0), founded: value(null, 0) };
      if (kind === 2)
        return {
          city: value("Atlantis"),
          employees: value(t.employees * 2),
          founded: value(`${Number(t.founded) + 10}-01-01`),
        };
      return {
        city: value(kind === 0 ? "NYC" : `  ${t.city.toUpperCase()}  `),
        employees: value(Math.round(t.employees * 1.03)),
        founded: value(`${t.founded}-06-15`, 0.8),
      };
    })(req),
  );
  const rules = `    eval:
      columns:
        employees: { tolerance: "5%" }
        city: { synonyms: [["New York", "NYC"]] }`;
  h = await startHarness("eval_cli", yaml("model-a", rules));
  dir = mkdtempSync(join(tmpdir(), "gleaner-eval-"));
  configFile = join(dir, "gleaner.yaml");
  againstFile = join(dir, "other.yaml");
  golden = join(dir, "golden.csv");
  writeFileSync(configFile, yaml("model-a", rules));
  writeFileSync(againstFile, yaml("model-b", ""));
  const lines = Array.from({ length: ROWS }, (_, i) => {
    const t = truth(i + 1);
    return `${i + 1},Company ${i + 1},${t.city},${t.employees},${t.founded}`;
  });
  writeFileSync(golden, ["id,name,city,employees,founded", ...lines].join("\n"));
}, 120_000);

afterAll(async () => {
  await h?.close();
  await llm?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ["bin/gleaner.js", "eval", "companies", "--golden", golden, ...args, "--config", configFile],
      { cwd: ROOT, env: { ...process.env, DATABASE_URL: h.testDb.url }, timeout: 120_000 },
      (error, stdout, stderr) =>
        resolve({ code: error ? (error.code as number) : 0, stdout, stderr }),
    );
  });
}

it("prints the per-column table and exits 1 below --fail-below", async () => {
  const run = await cli(["--fail-below", "precision=0.9"]);
  expect(run.stderr).toMatch(/precision 0\.667 is below 0\.9/);
  expect(run.code).toBe(1);
  const lines = run.stdout.split("\n");
  expect(lines.find((l) => l.startsWith("column"))).toMatch(
    /^column\s+filled\s+coverage\s+known\s+correct\s+precision\s+recall\s+ECE$/,
  );
  for (const column of ["city", "employees", "founded"])
    expect(lines.find((l) => l.startsWith(`${column} `))).toMatch(
      new RegExp(`^${column}\\s+15\\s+75\\.0%\\s+20\\s+10\\s+66\\.7%\\s+50\\.0%\\s+\\d\\.\\d{3}$`),
    );
  expect(run.stdout).toMatch(/^all\s+45\s+75\.0%\s+60\s+30\s+66\.7%\s+50\.0%/m);
  expect(run.stdout).toMatch(/^ECE before \d\.\d{3}, after/m);
  expect(run.stdout).toMatch(/^cost: \$0\.\d{4} paid/m);
  // The user's table was not touched; the rows ran in Gleaner's shadow table.
  expect(await h.query("select count(*)::int as n from companies")).toEqual([{ n: 0 }]);
  expect(
    await h.query(
      "select enrichment_status as s, count(*)::int as n from gleaner.eval_companies group by 1",
    ),
  ).toEqual([{ s: "done", n: ROWS }]);
}, 180_000);

it("prints JSON only, compares --against on the same rows, and passes a gate it meets", async () => {
  const run = await cli(["--json", "--against", againstFile, "--fail-below", "recall=0.5"]);
  expect(run.code).toBe(0);
  const out = JSON.parse(run.stdout) as {
    columns: { column: string; precision: number; recall: number; coverage: number }[];
    against: { columns: { column: string; precision: number; recall: number }[] };
    differences: { column: string; precision: number; recall: number; coverage: number }[];
    cost: { cached_calls: number; per_row_usd: number; paid_usd: number };
    fail_below: { missed: string[] };
  };
  expect(out.columns.find((c) => c.column === "city")).toMatchObject({
    precision: 0.6667,
    recall: 0.5,
    coverage: 0.75,
  });
  expect(out.against.columns.find((c) => c.column === "founded")).toMatchObject({
    precision: 1,
    recall: 1,
  });
  expect(out.differences.find((d) => d.column === "all")).toMatchObject({
    precision: 0.3333,
    recall: 0.5,
    coverage: 0.25,
  });
  expect(out.fail_below.missed).toEqual([]);
  // The same questions as the first run: answered by the cache, priced at what they cost then.
  expect(out.cost.cached_calls).toBeGreaterThan(0);
  expect(out.cost.paid_usd).toBe(0);
  expect(out.cost.per_row_usd).toBeGreaterThan(0);
  // Logs went to stderr.
  expect(run.stderr).toMatch(/eval companies/);
}, 180_000);

it("refuses a golden set without the pipeline's inputs (exit 2)", async () => {
  const bad = join(dir, "bad.csv");
  writeFileSync(bad, "id,city\n1,Leeds\n");
  const run = await cli(["--golden", bad]);
  expect(run.code).toBe(2);
  expect(run.stderr).toMatch(/has no column name/);
}, 60_000);
