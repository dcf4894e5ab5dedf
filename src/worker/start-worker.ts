import { connectionBudget } from "../db/connection-budget.ts";
import { EventEmitter } from "node:events";
import { run, type WorkerEvents } from "graphile-worker";
import type { Logger } from "pino";
import { APPLICATION_NAMES } from "../db/connect-database.ts";
import { ignoreReportedElsewhere } from "../db/pool-errors.ts";
import { makeEnrichBatchTask } from "../jobs/enrich-batch.ts";
import { coerceError } from "../core/coerce-error.ts";
import { workerLogger } from "../log/worker-logger.ts";
import type { Runtime } from "../pipeline/runtime.ts";
import { ENRICH_TASK } from "../sql/claim-due-rows.ts";
import { LLM_BATCHES_TASK, scheduleLlmBatches } from "../sql/schedule-llm-batches.ts";
import { llmBatchesPollMs, makeLlmBatchesTask } from "../jobs/llm-batches.ts";
import { heartbeatIntervalMs } from "../core/worker-liveness.ts";
import { PatientPool } from "./patient-pool.ts";
import { superviseRunner } from "./supervise-runner.ts";
import { startWorkerHeartbeat, type WorkerHeartbeat } from "./worker-heartbeat.ts";

export interface StartedWorker {
  /** Hands the rows of running jobs back (at once, not after a grace period), then stops. */
  stop(): Promise<void>;
  /** Why the process cannot take jobs right now (its runner is restarting), or undefined. */
  notReady(): string | undefined;
  /**
   * A database call outside any job failed with a connection error (graphile-worker's own job
   * completion, which it does not await): the runner is replaced, so a lock it may have left
   * behind dies with its pool and the reaper cleans it up.
   */
  lostDatabaseCall(): void;
}

/** How long graphile-worker's connections wait for a database that refuses them. */
const COMPLETION_PATIENCE_MS = 120_000;

/**
 * Starts graphile-worker with Gleaner's tasks, and keeps it running through database outages
 * (src/worker/supervise-runner.ts): the jobs a stopped runner's pool held are reaped by the
 * heartbeat (their rows given back), since no live process lists that pool any more. The worker gets a pool of its own so a burst of jobs never starves the
 * sweep of connections.
 */
export async function startWorker(options: {
  runtime: Runtime;
  url: string;
  logger: Logger;
  concurrency?: number;
  /** graphile-worker's event emitter, e.g. createMetrics().workerEvents to count job failures. */
  events?: WorkerEvents;
}): Promise<StartedWorker> {
  const { runtime, logger } = options;
  const { config } = runtime;
  const concurrency = options.concurrency ?? config.worker.concurrency;
  const pool = new PatientPool({
    connectionString: options.url,
    max: connectionBudget(concurrency).worker,
    application_name: APPLICATION_NAMES.worker,
    patienceMs: COMPLETION_PATIENCE_MS,
  });
  // A dropped connection must surface as a log line, not an unhandled 'error' event.
  pool.on("error", (error) => logger.warn(`worker pool: ${error.message}`));
  // A client's 'error' needs a listener, or it ends the process. It is said once already: by
  // the pool's 'error' for an idle client, by the failed query for one in use.
  pool.on("connect", (client) => client.on("error", ignoreReportedElsewhere));

  // Gleaner's own stop signal for its jobs: graphile-worker aborts running jobs only after a
  // 5 s grace period, and a job waiting on an LLM should hand its rows back at once.
  const stopping = new AbortController();
  const events = options.events ?? (new EventEmitter() as WorkerEvents);
  // The pools running in this process, as graphile-worker locks jobs in their name.
  const livePools = new Set<string>();
  const onPoolCreate = ({ workerPool }: { workerPool: { id: string } }) =>
    livePools.add(workerPool.id);
  const onPoolRelease = ({ workerPool }: { workerPool: { id: string } }) =>
    livePools.delete(workerPool.id);
  events.on("pool:create", onPoolCreate);
  events.on("pool:release", onPoolRelease);
  // Jobs running now, for the heartbeat: every job:start is followed by one job:complete.
  let jobsInFlight = 0;
  const onJobStart = () => void jobsInFlight++;
  const onJobComplete = () => void (jobsInFlight = Math.max(0, jobsInFlight - 1));
  events.on("job:start", onJobStart);
  events.on("job:complete", onJobComplete);

  const launch = () =>
    run({
      pgPool: pool,
      schema: config.workerSchema,
      concurrency,
      pollInterval: config.worker.pollIntervalMs,
      noHandleSignals: true,
      logger: workerLogger(logger),
      events,
      taskList: {
        [ENRICH_TASK]: makeEnrichBatchTask(runtime, stopping.signal),
        [LLM_BATCHES_TASK]: makeLlmBatchesTask(runtime),
      },
      // Gleaner schedules its own sweeps; graphile-worker's cron is not used.
      parsedCronItems: [],
      preset: {
        worker: {
          // Off through a transaction pooler: the statement named on one server connection is
          // unknown on the next (worker.prepared_statements).
          preparedStatements: config.worker.preparedStatements,
          // Jobs are completed one by one, not in graphile-worker 0.17's batches: its batcher
          // gives up at the first failed query (a database restart) and shuts the worker pool
          // down, and after a failure its count of pending batches drifts, so that shutdown
          // never ends. A single completion is not awaited by graphile-worker: while the
          // database refuses connections it waits in PatientPool; one lost all the same (the
          // server going down mid-query) is logged by the process guard, which then has this
          // runner replaced, so the lock it leaves behind dies with the old pool.
          // Off by default: jobs locked ahead wait behind this process's running ones.
          ...(config.worker.localQueue > 0
            ? { localQueue: { size: config.worker.localQueue } }
            : {}),
        },
      },
    });

  // `mode: batch` backends: the Batch API poll reschedules itself; this starts it (one job
  // fleet-wide, whichever process starts first).
  if (llmBatchesPollMs(runtime) !== undefined)
    await scheduleLlmBatches(runtime.db, config.workerSchema, new Date());
  let heartbeat: WorkerHeartbeat | undefined = undefined;
  const supervised = await superviseRunner(launch, {
    log: (m) => logger.warn(m),
    // The new pool is listed at once, so none of its jobs looks dead to another process.
    onStarted: async () => heartbeat?.beat(),
  });
  const shortestLease = Math.min(
    ...[...runtime.pipelines.values()].map((e) => e.pipeline.leaseMs),
    300_000,
  );
  heartbeat = await startWorkerHeartbeat(runtime.db, {
    schema: config.schema,
    workerSchema: config.workerSchema,
    intervalMs: heartbeatIntervalMs(shortestLease),
    pools: () => [...livePools],
    jobsInFlight: () => jobsInFlight,
    resolve: async (name) => (await runtime.ensurePipeline(name))?.pipeline,
    log: (m) => logger.warn(m),
    onReaped: (r) => runtime.events.emit("jobs:reaped", r),
  });

  const beating = heartbeat;
  return {
    notReady: () => supervised.notReady(),
    lostDatabaseCall: () =>
      void supervised.replace("a database call outside any job was lost to an outage"),
    stop: async () => {
      stopping.abort(new Error("Gleaner is shutting down"));
      await supervised.stop();
      await beating
        .stop()
        .catch((error: unknown) =>
          logger.warn(`worker heartbeat: could not unregister: ${coerceError(error).message}`),
        );
      events.off("pool:create", onPoolCreate);
      events.off("pool:release", onPoolRelease);
      events.off("job:start", onJobStart);
      events.off("job:complete", onJobComplete);
      await pool.end();
    },
  };
}
