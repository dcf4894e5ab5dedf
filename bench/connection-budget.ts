/**
 * The connection budget: how many PostgreSQL connections 1, 4 and 8 `gleaner start` processes
 * hold while busy (a backlog of rows, a 200 ms fake LLM), read from pg_stat_activity by
 * application_name (src/db/connect-database.ts names each pool), next to the formula in the
 * README ("Scaling out"): per process at most (src/db/connection-budget.ts)
 *
 *   pool (min(10, 1 + ceil(concurrency / 4))) + LISTEN (1) + graphile-worker (1 + ceil(concurrency / 4))
 *
 *   node --import tsx bench/connection-budget.ts [processes,...] [concurrency]
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import pg from "pg";
import { APPLICATION_NAMES } from "../src/db/connect-database.ts";
import { connectionBudget } from "../src/db/connection-budget.ts";
import { createBenchDatabase } from "./support/bench-database.ts";
import { startFakeLlmProcess } from "./support/fake-llm-process.ts";

const COUNTS = (process.argv[2] ?? "1,4,8").split(",").map(Number);
const CONCURRENCY = Number(process.argv[3] ?? 16);
const ROWS = 20_000;
const SAMPLE_MS = 20_000;
const BUDGET = connectionBudget(CONCURRENCY);

function gleaner(args: string[], env: NodeJS.ProcessEnv): ChildProcess {
  return spawn(process.execPath, ["bin/gleaner.js", ...args], {
    env: { ...process.env, ...env, GLEANER_LOG_LEVEL: "warn" },
    stdio: ["ignore", "ignore", "inherit"],
  });
}

async function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null) return child.exitCode;
  return new Promise((r) => child.once("exit", (code) => r(code)));
}

async function measure(processes: number, llmUrl: string): Promise<Record<string, number>> {
  const db = await createBenchDatabase(`connections_${processes}`);
  const dir = mkdtempSync(join(tmpdir(), "gleaner-connections-"));
  const configFile = join(dir, "gleaner.yaml");
  writeFileSync(
    configFile,
    `
worker: { concurrency: ${CONCURRENCY} }
llm:
  backends: [{ name: fake, base_url: "${llmUrl}", model: fake, timeout: 30s }]
pipelines:
  items:
    table: items
    inputs: [name]
    outputs: { score: { type: integer, description: "A score" } }
    schedule: "*/1 * * * * *"
    batch_size: 10
    stages:
      - { name: score, kind: llm, backends: [fake], prompt: "Score {{name}} #{{id}}", outputs: [score] }
`,
  );
  const env = { DATABASE_URL: db.url };
  if ((await exited(gleaner(["migrate", "--config", configFile], env))) !== 0)
    throw new Error("migrate failed");
  const admin = new pg.Client({ connectionString: db.url });
  await admin.connect();
  await admin.query(
    `insert into items (name) select 'item' || i from generate_series(1, ${ROWS}) i`,
  );
  const children = Array.from({ length: processes }, () =>
    gleaner(["start", "--no-migrate", "--no-http", "--config", configFile], env),
  );
  // On a loaded machine the processes take a while to start: sample once all of them listen.
  const startBy = Date.now() + 300_000;
  for (;;) {
    const r = await admin.query<{ n: number }>(
      `select count(*)::int as n from pg_stat_activity
        where datname = current_database() and application_name = $1`,
      [APPLICATION_NAMES.listen],
    );
    if ((r.rows[0]?.n ?? 0) >= processes) break;
    if (Date.now() > startBy) throw new Error(`${processes} processes did not all start`);
    await sleep(200);
  }
  const peak: Record<string, number> = { total: 0 };
  const until = Date.now() + SAMPLE_MS;
  while (Date.now() < until) {
    const r = await admin.query<{ application_name: string; n: number }>(
      `select application_name, count(*)::int as n from pg_stat_activity
        where datname = current_database() and pid <> pg_backend_pid() group by 1`,
    );
    let total = 0;
    for (const row of r.rows) {
      peak[row.application_name] = Math.max(peak[row.application_name] ?? 0, row.n);
      total += row.n;
    }
    peak.total = Math.max(peak.total ?? 0, total);
    await sleep(100);
  }
  const done = await admin.query<{ n: number }>(
    "select count(*)::int as n from items where enrichment_status = 'done'",
  );
  peak.rowsDone = done.rows[0]?.n ?? 0;
  for (const child of children) child.kill("SIGTERM");
  await Promise.all(children.map(exited));
  await admin.end();
  await db.drop();
  return peak;
}

async function main() {
  const llm = await startFakeLlmProcess(200);
  try {
    const perProcess = BUDGET.main + BUDGET.listen + BUDGET.worker;
    console.log(
      `worker.concurrency ${CONCURRENCY}: at most ${BUDGET.main} (pool) + ${BUDGET.listen} (LISTEN) + ${BUDGET.worker} (graphile-worker) = ${perProcess} per process; load average ${loadavg()
        .map((l) => l.toFixed(1))
        .join(" ")}`,
    );
    console.log(
      "processes | pool | LISTEN | graphile-worker | peak total | formula | rows done | load average",
    );
    for (const n of COUNTS) {
      const peak = await measure(n, llm.url);
      console.log(
        `${n} | ${peak[APPLICATION_NAMES.main] ?? 0} | ${peak[APPLICATION_NAMES.listen] ?? 0} | ${peak[APPLICATION_NAMES.worker] ?? 0} | ${peak.total} | ${n * perProcess} | ${peak.rowsDone} | ${loadavg()
          .map((l) => l.toFixed(1))
          .join(" ")}`,
      );
    }
  } finally {
    await llm.close();
  }
}

await main();
