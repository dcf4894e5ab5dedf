import { run, type Runner, type WorkerEvents } from "graphile-worker";
import type { Logger } from "pino";
import pg from "pg";
import { makeEnrichBatchTask } from "../../jobs/enrich-batch.ts";
import { workerLogger } from "../log/create-logger.ts";
import type { Runtime } from "../pipeline/runtime.ts";
import { ENRICH_TASK } from "../sql/claim-due-rows.ts";
import { startWorkerHeartbeat } from "./worker-heartbeat.ts";

/**
 * Starts graphile-worker with Gleaner's tasks. The worker gets a pool of its own so a burst of
 * jobs never starves the sweep of connections.
 */
export async function startWorker(options: {
  runtime: Runtime;
  url: string;
  logger: Logger;
  concurrency?: number;
  /** graphile-worker's event emitter, e.g. createMetrics().workerEvents to count job failures. */
  events?: WorkerEvents;
}): Promise<{ runner: Runner; stop: () => Promise<void> }> {
  const { runtime } = options;
  const concurrency = options.concurrency ?? runtime.config.worker.concurrency;
  const pool = new pg.Pool({ connectionString: options.url, max: concurrency + 4 });
  // A dropped connection must surface as a log line, not an unhandled 'error' event.
  pool.on("error", (error) => options.logger.warn(`worker pool: ${error.message}`));
  pool.on("connect", (client) => {
    client.on("error", (error) => options.logger.warn(`worker connection: ${error.message}`));
  });
  const runner = await run({
    pgPool: pool,
    schema: runtime.config.workerSchema,
    concurrency,
    pollInterval: runtime.config.worker.pollIntervalMs,
    noHandleSignals: true,
    logger: workerLogger(options.logger),
    ...(options.events ? { events: options.events } : {}),
    taskList: { [ENRICH_TASK]: makeEnrichBatchTask(runtime) },
    // Gleaner schedules its own sweeps; graphile-worker's cron is not used.
    parsedCronItems: [],
    preset: {
      worker: {
        // Complete jobs in batches: fewer round trips per job. A completion lost to a crash is
        // harmless: the job's rows have moved on from its claim, so a re-run does nothing.
        completeJobBatchDelay: 0,
        // Off by default: jobs locked ahead would leave their rows `queued` on a dead worker
        // until queue_timeout instead of coming back within the lease.
        ...(runtime.config.worker.localQueue > 0
          ? { localQueue: { size: runtime.config.worker.localQueue } }
          : {}),
      },
    },
  });
  const heartbeat = await startWorkerHeartbeat(runtime.db, runtime.config.schema, (m) =>
    options.logger.warn(m),
  );
  return {
    runner,
    stop: async () => {
      await runner.stop();
      await heartbeat.stop();
      await pool.end();
    },
  };
}
