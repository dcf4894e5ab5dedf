/**
 * Insert-to-start latency: from an INSERT's commit to the first stage's LLM call arriving,
 * through the table trigger's NOTIFY, the scheduler's sweep and the worker. graphile-worker's
 * own add_job-to-task-start latency is measured in the same run as the baseline.
 *
 *   node --import tsx bench/insert-latency.ts [samples]
 *
 * Aim: p50 < 50 ms.
 */
import { Logger, makeWorkerUtils, run } from "graphile-worker";
import { pino } from "pino";
import { openGleaner } from "../src/app/open-gleaner.ts";
import { parseConfig } from "../src/config/load-config.ts";
import { startScheduler } from "../src/sweep/scheduler.ts";
import { startWorker } from "../src/worker/start-worker.ts";
import { answerRows, startFakeLlm } from "../test/support/fake-llm-server.ts";
import { createBenchDatabase, fmt } from "./support/bench-database.ts";

const SAMPLES = Number(process.argv[2] ?? 200);

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((s.length * p) / 100))] ?? Number.NaN;
}

async function graphileBaseline(url: string): Promise<number[]> {
  const utils = await makeWorkerUtils({ connectionString: url });
  await utils.migrate();
  let resolveStart: (() => void) | undefined;
  const runner = await run({
    connectionString: url,
    concurrency: 4,
    noHandleSignals: true,
    logger: new Logger(() => () => {}),
    taskList: {
      ping: () => {
        resolveStart?.();
        return Promise.resolve();
      },
    },
  });
  const samples: number[] = [];
  for (let i = 0; i < SAMPLES; i++) {
    const started = new Promise<void>((r) => (resolveStart = r));
    const t = performance.now();
    await utils.addJob("ping", {});
    await started;
    samples.push(performance.now() - t);
    await new Promise((r) => setTimeout(r, 5));
  }
  await runner.stop();
  await utils.release();
  return samples;
}

async function main() {
  const db = await createBenchDatabase("latency");
  const llm = await startFakeLlm();
  const answer = answerRows(() => ({ label: { value: "ok", confidence: 0.9 } }));
  let resolveCall: (() => void) | undefined;
  llm.handle((req) => {
    resolveCall?.();
    return answer(req);
  });
  try {
    const baseline = await graphileBaseline(db.url);
    const logger = pino({ level: "warn" });
    const config = parseConfig(
      `
llm:
  backends: [{ name: fake, base_url: ${llm.url}, model: fake }]
pipelines:
  items:
    table: items
    inputs: [name]
    outputs: { label: { type: text, description: "A label" } }
    schedule: "0 0 1 1 *"
    stages:
      - { name: label, kind: llm, backends: [fake], prompt: "Label {{name}}", outputs: [label] }
`,
      { env: { DATABASE_URL: db.url } },
    );
    const app = await openGleaner(config, { env: { DATABASE_URL: db.url }, logger, migrate: true });
    const worker = await startWorker({ runtime: app.runtime, url: db.url, logger });
    const scheduler = await startScheduler({
      db: app.database.db,
      pool: app.database.pool,
      config,
      pipelines: [...app.runtime.pipelines.values()].map((e) => e.pipeline),
      log: (m) => logger.warn(m),
    });
    await new Promise((r) => setTimeout(r, 500));
    const samples: number[] = [];
    for (let i = 0; i < SAMPLES; i++) {
      const called = new Promise<void>((r) => (resolveCall = r));
      const t = performance.now();
      await app.database.pool.query("insert into items (name) values ($1)", [`item${i}`]);
      await called;
      samples.push(performance.now() - t);
      await new Promise((r) => setTimeout(r, 5));
    }
    await scheduler.stop();
    await worker.stop();
    await app.close();
    console.log(
      `samples: ${SAMPLES} single-row inserts, one at a time (the cron schedule never fires: only the trigger's NOTIFY starts work)`,
    );
    console.log(
      `graphile-worker add_job → task start: p50 ${fmt(pct(baseline, 50), 1)} ms, p95 ${fmt(pct(baseline, 95), 1)} ms (baseline)`,
    );
    console.log(
      `gleaner insert → first LLM call:      p50 ${fmt(pct(samples, 50), 1)} ms, p95 ${fmt(pct(samples, 95), 1)} ms`,
    );
    console.log(`ratio p50: ${fmt(pct(samples, 50) / pct(baseline, 50), 2)}`);
  } finally {
    await llm.close();
    await db.drop();
  }
}

await main();
