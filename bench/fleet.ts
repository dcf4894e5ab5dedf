/**
 * How far one PostgreSQL goes: 1, 2, 4 and 8 `gleaner worker` processes plus one `gleaner sweep`
 * process against one database, a 200 ms fake LLM (in a process of its own), a backlog of rows.
 * For each fleet size, over a window in steady state (every worker registered and busy):
 * rows/s (from the trigger-kept counters), the ratio to one process, the CPU of this database's
 * PostgreSQL backends and of the Gleaner processes (from /proc, in cores: CPU seconds per second
 * of wall clock), and the peak connections (pg_stat_activity).
 *
 * Each worker runs `concurrency` jobs of one LLM call (job_size = batch_size = 10); the LLM limit
 * is set so every process gets the same share whatever the fleet size (max_concurrency is
 * fleet-wide, src/concurrency/process-share.ts). One process's bound is then
 * concurrency x 10 rows / 0.2 s, and n processes' n times that, until something else saturates.
 *
 *   node --import tsx bench/fleet.ts [processes,...=1,2,4,8] [concurrency=8] [windowSeconds=20]
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import pg from "pg";
import { createBenchDatabase, fmt } from "./support/bench-database.ts";
import { startFakeLlmProcess } from "./support/fake-llm-process.ts";

const COUNTS = (process.argv[2] ?? "1,2,4,8").split(",").map(Number);
const CONCURRENCY = Number(process.argv[3] ?? 8);
const WINDOW_S = Number(process.argv[4] ?? 20);
const LATENCY_MS = 200;
const BATCH = 10;
/** Clock ticks per second of /proc/<pid>/stat (USER_HZ, 100 on Linux). */
const HZ = 100;

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

/** CPU ticks (user + system) a process has used, or 0 once it is gone. */
function cpuTicks(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the command name, which is in parentheses and may hold spaces.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return Number(fields[11]) + Number(fields[12]);
  } catch {
    return 0;
  }
}

async function backendPids(admin: pg.Client): Promise<number[]> {
  const r = await admin.query<{ pid: number }>(
    "select pid from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()",
  );
  return r.rows.map((row) => row.pid);
}

async function doneRows(admin: pg.Client): Promise<number> {
  const r = await admin.query<{ n: string | null }>(
    "select sum(n) as n from gleaner.row_counts where pipeline = 'items' and status = 'done'",
  );
  return Number(r.rows[0]?.n ?? 0);
}

interface Measured {
  rowsPerSecond: number;
  pgCores: number;
  gleanerCores: number;
  peakConnections: number;
  load: string;
}

async function measure(processes: number, llmUrl: string): Promise<Measured> {
  const db = await createBenchDatabase(`fleet_${processes}`);
  const dir = mkdtempSync(join(tmpdir(), "gleaner-fleet-"));
  const configFile = join(dir, "gleaner.yaml");
  // Every process may send `concurrency` calls at once, whatever the fleet size.
  writeFileSync(
    configFile,
    `
worker: { concurrency: ${CONCURRENCY}, poll_interval: 500ms }
llm:
  cache_ttl: 0s
  backends:
    - { name: fake, base_url: "${llmUrl}", model: fake, timeout: 60s, max_concurrency: ${CONCURRENCY * processes}, min_concurrency: ${CONCURRENCY * processes} }
pipelines:
  items:
    table: items
    inputs: [name]
    outputs: { label: { type: text, description: "A label" } }
    schedule: "*/1 * * * * *"
    batch_size: ${BATCH}
    job_size: ${BATCH}
    sweep_limit: 2000
    stages:
      - { name: label, kind: llm, backends: [fake], prompt: "Label {{name}}", outputs: [label] }
`,
  );
  const env = { DATABASE_URL: db.url };
  if ((await exited(gleaner(["migrate", "--config", configFile], env))) !== 0)
    throw new Error("migrate failed");
  const admin = new pg.Client({ connectionString: db.url });
  await admin.connect();
  // Enough rows that the backlog outlasts the warm-up and the window at the fleet's bound.
  const bound = (processes * CONCURRENCY * BATCH) / (LATENCY_MS / 1000);
  const rows = Math.ceil(bound * (WINDOW_S + 60));
  await admin.query(
    `insert into items (name) select 'item' || i from generate_series(1, ${rows}) i`,
  );
  const children = [
    gleaner(["sweep", "--config", configFile], env),
    ...Array.from({ length: processes }, () =>
      gleaner(["worker", "--concurrency", String(CONCURRENCY), "--config", configFile], env),
    ),
  ];
  try {
    // On a loaded machine the processes take a while to start: measure once every worker beats.
    const startBy = Date.now() + 300_000;
    for (;;) {
      const r = await admin.query<{ n: number }>(
        "select count(*)::int as n from gleaner.workers where heartbeat_at > now() - interval '30 seconds'",
      );
      if ((r.rows[0]?.n ?? 0) >= processes) break;
      if (Date.now() > startBy) throw new Error(`${processes} workers did not all start`);
      await sleep(200);
    }
    await sleep(3000);
    const pidsBefore = await backendPids(admin);
    const ticksBefore = new Map(pidsBefore.map((pid) => [pid, cpuTicks(pid)]));
    const gleanerBefore = children.map((c) => cpuTicks(c.pid ?? 0));
    const doneBefore = await doneRows(admin);
    const started = performance.now();
    let peakConnections = 0;
    let backends = new Set(pidsBefore);
    while (performance.now() - started < WINDOW_S * 1000) {
      const pids = await backendPids(admin);
      // +1: this client's own connection.
      peakConnections = Math.max(peakConnections, pids.length + 1);
      for (const pid of pids) {
        if (!backends.has(pid)) ticksBefore.set(pid, 0);
        backends.add(pid);
      }
      await sleep(200);
    }
    const seconds = (performance.now() - started) / 1000;
    const done = (await doneRows(admin)) - doneBefore;
    backends = new Set([...backends, ...(await backendPids(admin))]);
    let pgTicks = 0;
    for (const pid of backends) pgTicks += Math.max(0, cpuTicks(pid) - (ticksBefore.get(pid) ?? 0));
    const gleanerTicks = children.reduce(
      (sum, c, i) => sum + Math.max(0, cpuTicks(c.pid ?? 0) - (gleanerBefore[i] ?? 0)),
      0,
    );
    const remaining = await admin.query<{ n: number }>(
      "select count(*)::int as n from items where enrichment_status = 'pending'",
    );
    if ((remaining.rows[0]?.n ?? 0) === 0)
      console.error(`warning: the backlog ran out during the ${processes}-process window`);
    return {
      rowsPerSecond: done / seconds,
      pgCores: pgTicks / HZ / seconds,
      gleanerCores: gleanerTicks / HZ / seconds,
      peakConnections,
      load: loadavg()
        .map((l) => l.toFixed(1))
        .join(" "),
    };
  } finally {
    for (const child of children) child.kill("SIGTERM");
    await Promise.all(children.map(exited));
    await admin.end();
    await db.drop();
  }
}

async function main() {
  const llm = await startFakeLlmProcess(LATENCY_MS);
  try {
    const perProcess = (CONCURRENCY * BATCH) / (LATENCY_MS / 1000);
    console.log(
      `worker concurrency ${CONCURRENCY}, one LLM call of ${BATCH} rows per job, LLM ${LATENCY_MS} ms: bound ${fmt(perProcess)} rows/s per process; window ${WINDOW_S} s; ${process.env.DATABASE_URL ?? "local PostgreSQL"}`,
    );
    console.log(
      "| workers | rows/s | ratio to 1 | of the bound | PostgreSQL CPU (cores) | Gleaner CPU (cores) | peak connections | load average (1, 5, 15 min) |",
    );
    console.log("| --- | --- | --- | --- | --- | --- | --- | --- |");
    let one: number | undefined;
    for (const n of COUNTS) {
      const m = await measure(n, llm.url);
      if (n === 1) one = m.rowsPerSecond;
      console.log(
        `| ${n} | ${fmt(m.rowsPerSecond)} | ${one ? fmt(m.rowsPerSecond / one, 2) : "-"} | ${fmt((m.rowsPerSecond / (n * perProcess)) * 100)}% | ${fmt(m.pgCores, 2)} | ${fmt(m.gleanerCores, 2)} | ${m.peakConnections} | ${m.load} |`,
      );
    }
  } finally {
    await llm.close();
  }
}

await main();
