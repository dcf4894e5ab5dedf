import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { sql } from "kysely";
import { createFailureLog } from "../core/failure-log.ts";
import { GLEANER_VERSION } from "../core/gleaner-version.ts";
import { MISSED_BEATS_FOR_DEAD } from "../core/worker-liveness.ts";
import type { Db } from "../db/connect-database.ts";
import type { InstalledPipeline } from "../pipeline/installed-pipeline.ts";
import { reapDeadJobs } from "../sql/reap-dead-jobs.ts";

export interface WorkerHeartbeat {
  id: string;
  /** Writes a beat now (the pools changed). */
  beat(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Registers this worker process in gleaner.workers with the graphile-worker pools it runs, and
 * keeps its heartbeat fresh, so that:
 * - a worker that vanished is visible (and alertable) even though it could say nothing;
 * - at every beat, jobs held by dead processes (or by this process's own runner before it
 *   restarted) are reaped: their rows given back at once (src/sql/reap-dead-jobs.ts).
 */
export async function startWorkerHeartbeat(
  db: Db,
  options: {
    schema: string;
    workerSchema: string;
    intervalMs: number;
    pools: () => readonly string[];
    /** graphile-worker jobs running in this process now, shown by `gleaner status`. */
    jobsInFlight: () => number;
    resolve: (pipeline: string) => Promise<InstalledPipeline | undefined>;
    log: (message: string) => void;
    onReaped?: (result: { jobs: number; rows: number }) => void;
  },
): Promise<WorkerHeartbeat> {
  const id = `${hostname()}:${process.pid}:${randomBytes(3).toString("hex")}`;
  const table = db.withSchema(options.schema);
  const graceMs = options.intervalMs * MISSED_BEATS_FOR_DEAD;
  // Workers that died without a word leave their row; an hour of silence is long enough to say
  // they are gone, and keeps dead workers from lingering in /metrics.
  await table
    .deleteFrom("workers")
    .where("heartbeat_at", "<", new Date(Date.now() - 3_600_000))
    .execute();
  await table
    .insertInto("workers")
    .values({
      id,
      host: hostname(),
      pid: process.pid,
      pools: [...options.pools()],
      version: GLEANER_VERSION,
      jobs_in_flight: options.jobsInFlight(),
    })
    .execute();

  const failures = createFailureLog("worker heartbeat", options.log);
  const beat = async () => {
    await table
      .updateTable("workers")
      .set({
        heartbeat_at: sql<Date>`now()`,
        pools: [...options.pools()],
        jobs_in_flight: options.jobsInFlight(),
      })
      .where("id", "=", id)
      .execute();
    const reaped = await reapDeadJobs(db, {
      schema: options.schema,
      workerSchema: options.workerSchema,
      graceMs,
      resolve: options.resolve,
    });
    if (reaped.jobs > 0) {
      options.log(
        `gave back ${reaped.rows} rows of ${reaped.jobs} jobs whose worker is gone (no heartbeat for ${graceMs} ms)`,
      );
      options.onReaped?.(reaped);
    }
  };
  // Beats never overlap: a slow one (the database away) delays the next.
  let timer: NodeJS.Timeout | undefined;
  let current: Promise<void> = Promise.resolve();
  let stopped = false;
  const loop = () => {
    current = beat()
      .then(() => failures.succeeded())
      .catch((error: unknown) => failures.failed(error))
      .finally(() => {
        if (!stopped) timer = setTimeout(loop, options.intervalMs).unref();
      });
  };
  // The first beat at once: a process starting after a crash reaps what the dead one left.
  loop();
  return {
    id,
    async beat() {
      await current;
      if (timer) clearTimeout(timer);
      loop();
      await current;
    },
    stop: async () => {
      stopped = true;
      if (timer) clearTimeout(timer);
      await current;
      await table.deleteFrom("workers").where("id", "=", id).execute();
    },
  };
}
