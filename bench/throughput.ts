/**
 * Rows/s through a one-stage LLM pipeline (batch_size 10) against a fake LLM, next to
 * graphile-worker's own no-op job throughput measured in the same round on the same database.
 *
 *   node --import tsx bench/throughput.ts [rows] [latencyMs] [maxConcurrency]
 *
 * Environment: JOB_SIZE (rows per job, default the pipeline default, 20 x batch_size here),
 * WORKER_CONCURRENCY (worker.concurrency, default Gleaner's, 16), LOCAL_QUEUE (worker.local_queue),
 * ROUNDS (default 3), BASELINES=0 (Gleaner alone in one round, e.g. under a profiler),
 * TIMELINE=1 (rows settled per sweep, on stderr).
 * Each round runs on a fresh database: graphile-worker's batched no-op throughput (local queue
 * and batched completion, as its performance docs configure it), then Gleaner, and Gleaner's
 * rows/s as a fraction of that baseline. The host's speed drifts by a third within minutes, so
 * the figure is the median of the rounds' fractions, each pairing Gleaner with the baseline
 * measured just before it.
 * With latency 0 the aims are >= 5,000 rows/s and >= 35% of the batched no-op jobs/s. With
 * latency 500 ms and 64 concurrent calls the bound is 64 x 10 / 0.5 s = 1,280 rows/s, and the
 * aim is >= 95% of it. The fake LLM runs in a child process, as a remote LLM would.
 */
import { readFileSync } from "node:fs";
import { makeWorkerUtils, run } from "graphile-worker";
import { pino } from "pino";
import { openGleaner } from "../src/app/open-gleaner.ts";
import { parseConfig } from "../src/config/load-config.ts";
import { readRowCounts } from "../src/sql/row-counts.ts";
import { sweepPipeline } from "../src/sweep/sweep-pipeline.ts";
import { startWorker } from "../src/worker/start-worker.ts";
import { createBenchDatabase, fmt } from "./support/bench-database.ts";
import { startFakeLlmProcess } from "./support/fake-llm-process.ts";

const ROWS = Number(process.argv[2] ?? 50_000);
const LATENCY_MS = Number(process.argv[3] ?? 0);
const MAX_CALLS = Number(process.argv[4] ?? 64);
// Rounds, each on a fresh database with its own baseline: ROUNDS, default 3 (1 with BASELINES=0).
const ROUNDS = Number(process.env.ROUNDS ?? (process.env.BASELINES === "0" ? 1 : 3));
if (!Number.isInteger(ROUNDS) || ROUNDS < 1)
  throw new Error(`ROUNDS must be a whole number of at least 1, got "${process.env.ROUNDS}"`);
const BATCH = 10;
// Without WORKER_CONCURRENCY, Gleaner's default (worker.concurrency 16): with jobs of 100 rows in
// chunks of 10, 16 jobs ask for 160 calls at once, more than the 64 the backend allows, and more
// jobs only hold more rows in flight (the first settle later, with no gain in rows/s).
const CONCURRENCY = process.env.WORKER_CONCURRENCY
  ? Number(process.env.WORKER_CONCURRENCY)
  : undefined;
const logger = pino({ level: "warn" });

/**
 * graphile-worker's no-op throughput, on its defaults (`batched` false: one fetch and one
 * completion per job) or configured as its performance docs do for its headline figure
 * (https://worker.graphile.org/docs/performance, 0.17: concurrentJobs 24, maxPoolSize 25,
 * localQueue.size 500, completeJobBatchDelay 0, failJobBatchDelay 0: jobs fetched 500 at a
 * time into a local queue, completions and failures sent in batches).
 */
async function graphileNoop(
  url: string,
  jobs: number,
  concurrency: number,
  batched = false,
): Promise<number> {
  const utils = await makeWorkerUtils({ connectionString: url });
  await utils.migrate();
  await utils.withPgClient((c) =>
    c.query(
      `select graphile_worker.add_jobs(array(select row('noop', '{}'::json, null, null, 1, null, null, null)::graphile_worker.job_spec from generate_series(1, $1)))`,
      [jobs],
    ),
  );
  let done = 0;
  const started = performance.now();
  const runner = await run({
    connectionString: url,
    concurrency: batched ? 24 : concurrency,
    ...(batched
      ? {
          maxPoolSize: 25,
          preset: {
            worker: { localQueue: { size: 500 }, completeJobBatchDelay: 0, failJobBatchDelay: 0 },
          },
        }
      : {}),
    noHandleSignals: true,
    pollInterval: 100,
    logger: new (await import("graphile-worker")).Logger(() => () => {}),
    taskList: {
      noop: () => {
        done++;
        return Promise.resolve();
      },
    },
  });
  while (done < jobs) await new Promise((r) => setTimeout(r, 5));
  const seconds = (performance.now() - started) / 1000;
  await runner.stop();
  await utils.release();
  return jobs / seconds;
}

/**
 * CPU time the whole machine spent busy (user, nice, system, irq, softirq: not idle, I/O wait or
 * steal), in microseconds, from /proc/stat; undefined where there is none. Over the run it is
 * the worker, PostgreSQL and the fake LLM together: the figure the machine's cores bound, and
 * steadier than rows/s when the host's speed varies.
 */
function machineBusyMicros(): number | undefined {
  try {
    const line = readFileSync("/proc/stat", "utf8").split("\n")[0] ?? "";
    const [user, nice, system, , , irq, softirq] = line.trim().split(/\s+/).slice(1).map(Number);
    // USER_HZ ticks, 100 per second on Linux.
    return ((user ?? 0) + (nice ?? 0) + (system ?? 0) + (irq ?? 0) + (softirq ?? 0)) * 10_000;
  } catch {
    return undefined;
  }
}

interface Round {
  rowsPerSecond: number;
  /** 10-90 % of the rows settled, when both points were seen. */
  steady: number | undefined;
  at10: number | undefined;
  at90: number | undefined;
  seconds: number;
  cpu: NodeJS.CpuUsage;
  machineMicros: number | undefined;
  /** The fake LLM process's CPU over the run. */
  llmMicros: number | undefined;
  done: number;
  failed: number;
  jobSize: number;
  concurrency: number;
  localQueue: number;
  noopJobs: number;
  batchedJobs: number;
}

/**
 * One round on a database of its own: graphile-worker's no-op baselines (the plain one in the
 * first round only), then Gleaner over ROWS fresh rows. A fresh database per round leaves no
 * answer cache, counters or dead rows of an earlier round behind to help or hinder this one.
 */
async function runRound(
  llm: { url: string; pid: number },
  round: number,
  baselines: boolean,
): Promise<Round> {
  const db = await createBenchDatabase("throughput");
  try {
    // Without JOB_SIZE, the pipeline's default: what a user gets.
    const jobSizeLine = process.env.JOB_SIZE ? `\n    job_size: ${process.env.JOB_SIZE}` : "";
    const config = parseConfig(
      `
llm:
  backends:
    - { name: fake, base_url: ${llm.url}, model: fake, max_concurrency: ${MAX_CALLS} }
worker: { ${CONCURRENCY === undefined ? "" : `concurrency: ${CONCURRENCY}, `}poll_interval: 100ms, local_queue: ${process.env.LOCAL_QUEUE ?? 0} }
pipelines:
  items:
    table: items
    inputs: [name]
    outputs: { label: { type: text, description: "A label" } }
    batch_size: ${BATCH}
    sweep_limit: 5000${jobSizeLine}
    stages:
      - { name: label, kind: llm, backends: [fake], prompt: "Label {{name}}", outputs: [label] }
`,
      { env: { DATABASE_URL: db.url } },
    );
    const noopJobs =
      baselines && round === 0
        ? await graphileNoop(db.url, 20_000, config.worker.concurrency)
        : NaN;
    const batchedJobs = baselines ? await graphileNoop(db.url, 50_000, 24, true) : NaN;

    const app = await openGleaner(config, { env: { DATABASE_URL: db.url }, logger, migrate: true });
    const pipeline = app.runtime.pipelines.get("items")!.pipeline;
    await app.database.pool.query(
      `insert into items (name) select 'item' || i from generate_series(1, $1) i`,
      [ROWS],
    );
    const worker = await startWorker({ runtime: app.runtime, url: db.url, logger });
    const started = performance.now();
    const cpuBefore = process.cpuUsage();
    const machineBefore = machineBusyMicros();
    const llmBefore = processCpuMicros(llm.pid);
    // When 10 % and 90 % of the rows were settled: the steady rate between them leaves out the
    // ramp-up (first sweep, first jobs) and the tail (the last jobs, fewer than the slots).
    let at10: number | undefined;
    let at90: number | undefined;
    for (;;) {
      const { claimed } = await sweepPipeline(app.database.db, config, pipeline);
      const counts = await readRowCounts(app.database.db, config.schema, "items");
      const settled = (counts.done ?? 0) + (counts.failed ?? 0) + (counts.exhausted ?? 0);
      if (process.env.TIMELINE === "1")
        process.stderr.write(
          `${((performance.now() - started) / 1000).toFixed(2)} s: claimed ${claimed}, settled ${settled}, running ${counts.running ?? 0}\n`,
        );
      if (at10 === undefined && settled >= ROWS * 0.1) at10 = performance.now() - started;
      if (at90 === undefined && settled >= ROWS * 0.9) at90 = performance.now() - started;
      if (settled >= ROWS) break;
      await new Promise((r) => setTimeout(r, claimed === 0 ? 100 : 10));
    }
    const seconds = (performance.now() - started) / 1000;
    const cpu = process.cpuUsage(cpuBefore);
    const machineAfter = machineBusyMicros();
    const llmAfter = processCpuMicros(llm.pid);
    await worker.stop();
    const counts = await readRowCounts(app.database.db, config.schema, "items");
    await app.close();
    return {
      rowsPerSecond: ROWS / seconds,
      steady:
        at10 !== undefined && at90 !== undefined && at90 > at10
          ? (ROWS * 0.8) / ((at90 - at10) / 1000)
          : undefined,
      at10,
      at90,
      seconds,
      cpu,
      machineMicros:
        machineBefore !== undefined && machineAfter !== undefined
          ? machineAfter - machineBefore
          : undefined,
      llmMicros:
        llmBefore !== undefined && llmAfter !== undefined ? llmAfter - llmBefore : undefined,
      done: counts.done ?? 0,
      failed: counts.failed ?? 0,
      jobSize: config.pipelines[0]!.jobSize,
      concurrency: config.worker.concurrency,
      localQueue: config.worker.localQueue,
      noopJobs,
      batchedJobs,
    };
  } finally {
    await db.drop();
  }
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** A process's CPU time (user + system) in microseconds, from /proc; undefined where there is none. */
function processCpuMicros(pid: number): number | undefined {
  try {
    // The fields after the command name, which may hold spaces: utime and stime are the 12th
    // and 13th of them, in USER_HZ ticks (100 per second).
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
    return (Number(fields[11]) + Number(fields[12])) * 10_000;
  } catch {
    return undefined;
  }
}

async function main() {
  const llm = await startFakeLlmProcess(LATENCY_MS);
  try {
    // BASELINES=0 leaves the graphile-worker runs out (for profiling Gleaner alone).
    const baselines = process.env.BASELINES !== "0";
    const rounds: Round[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const r = await runRound(llm, round, baselines);
      rounds.push(r);
      if (ROUNDS > 1)
        // On stderr: progress, not the result.
        process.stderr.write(
          `round ${round + 1} of ${ROUNDS}: ${fmt(r.rowsPerSecond)} rows/s` +
            (baselines
              ? `, batched no-op ${fmt(r.batchedJobs)} jobs/s, ${fmt((r.rowsPerSecond / r.batchedJobs) * 100, 1)}%`
              : "") +
            "\n",
        );
    }
    const first = rounds[0] as Round;
    console.log(
      `rows: ${fmt(ROWS)}, batch_size ${BATCH}, job_size ${first.jobSize}, LLM latency ${LATENCY_MS} ms, max ${MAX_CALLS} calls, worker concurrency ${first.concurrency}, local_queue ${first.localQueue}, rounds ${ROUNDS}`,
    );
    for (const [i, r] of rounds.entries()) {
      const label = ROUNDS > 1 ? `round ${i + 1}: ` : "";
      console.log(`${label}done: ${fmt(r.done)}, failed: ${fmt(r.failed)}`);
      if (i === 0)
        console.log(`graphile-worker no-op jobs:   ${fmt(r.noopJobs)} jobs/s (baseline)`);
      console.log(
        `${label}gleaner pipeline:             ${fmt(r.rowsPerSecond)} rows/s (${fmt(r.rowsPerSecond / BATCH)} LLM calls/s, ${fmt(r.rowsPerSecond / r.jobSize)} jobs/s) in ${fmt(r.seconds, 2)} s`,
      );
      console.log(
        `${label}graphile-worker no-op jobs, batched (local queue 500, batched completion): ${fmt(r.batchedJobs)} jobs/s`,
      );
      // Less noisy than rows/s on a shared machine: what one row cost this process (user +
      // system, every thread: the event loop, the garbage collector's helpers, libuv's pool).
      console.log(
        `${label}gleaner process CPU: ${fmt((r.cpu.user + r.cpu.system) / ROWS, 1)} µs per row (${fmt(r.cpu.user / 1e6, 2)} s user, ${fmt(r.cpu.system / 1e6, 2)} s system)`,
      );
      if (r.machineMicros !== undefined)
        console.log(
          `${label}machine CPU (worker, PostgreSQL, fake LLM): ${fmt(r.machineMicros / ROWS, 1)} µs per row, ${fmt(r.machineMicros / 1e6 / r.seconds, 2)} cores busy`,
        );
      if (r.llmMicros !== undefined)
        console.log(
          `${label}of which the fake LLM process: ${fmt(r.llmMicros / ROWS, 1)} µs per row`,
        );
      if (r.steady !== undefined)
        console.log(
          `${label}steady state (10-90 % of the rows settled): ${fmt(r.steady)} rows/s; 10 % settled after ${fmt((r.at10 as number) / 1000, 2)} s, 90 % after ${fmt((r.at90 as number) / 1000, 2)} s`,
        );
      if (i === 0)
        console.log(`ratio rows/s over no-op jobs/s: ${fmt(r.rowsPerSecond / r.noopJobs, 2)}`);
      console.log(
        `${label}gleaner rows/s as a fraction of batched no-op jobs/s: ${fmt((r.rowsPerSecond / r.batchedJobs) * 100, 1)}%`,
      );
      if (LATENCY_MS > 0) {
        const bound = (MAX_CALLS * BATCH) / (LATENCY_MS / 1000);
        console.log(
          `${label}bound ${MAX_CALLS} x ${BATCH} / ${LATENCY_MS / 1000} s = ${fmt(bound)} rows/s; reached ${fmt((r.rowsPerSecond / bound) * 100, 1)}% over the whole run` +
            (r.steady === undefined
              ? ""
              : `, ${fmt((r.steady / bound) * 100, 1)}% in steady state (10-90 % of the rows: ${fmt(r.steady)} rows/s)`),
        );
      }
    }
    // The host's speed drifts by a third within minutes, and each round's share pairs Gleaner
    // with a baseline measured just before it: the median of the rounds is the figure.
    const shares = rounds.map((r) => (r.rowsPerSecond / r.batchedJobs) * 100);
    console.log(
      `median of ${ROUNDS} round${ROUNDS === 1 ? "" : "s"}: ${fmt(median(rounds.map((r) => r.rowsPerSecond)))} rows/s${LATENCY_MS === 0 ? " (aim >= 5,000)" : ""}` +
        (baselines
          ? `, ${fmt(median(shares), 1)}% of batched no-op jobs/s (${LATENCY_MS === 0 ? "aim >= 35%; " : ""}rounds: ${shares.map((x) => `${fmt(x, 1)}%`).join(", ")})`
          : ""),
    );
    if (LATENCY_MS > 0) {
      const bound = (MAX_CALLS * BATCH) / (LATENCY_MS / 1000);
      console.log(
        `median share of the bound: ${fmt((median(rounds.map((r) => r.rowsPerSecond)) / bound) * 100, 1)}% over the whole run (aim >= 95%)`,
      );
    }
    const stats = await llm.stats();
    console.log(`LLM calls: ${fmt(stats.calls)}, max in flight: ${stats.maxInFlight}`);
  } finally {
    await llm.close();
  }
}

await main();
