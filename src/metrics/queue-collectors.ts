import { EventEmitter } from "node:events";
import type { WorkerEvents } from "graphile-worker";
import type { Registry } from "prom-client";
import type { Db } from "../db/connect-database.ts";
import type { RuntimeEvents } from "../pipeline/runtime-events.ts";
import { readQueueJobCounts, type QueueJobCounts } from "../sql/queue-job-counts.ts";
import { cataloguedCounter, cataloguedGauge } from "./catalogued-metric.ts";

/**
 * graphile-worker's queue: jobs by state, read from its jobs view at scrape time (the same for
 * every process), and the jobs that failed for good in this process, counted from the worker's
 * events. Returns the emitter to hand to startWorker({ events }) and the function that
 * unsubscribes from it.
 */
export function registerQueueCollectors(
  registry: Registry,
  db: Db,
  workerSchema: string,
  runtimeEvents: RuntimeEvents,
): { workerEvents: WorkerEvents; detach: () => void } {
  cataloguedGauge(registry, "gleaner_queue_jobs", {
    async collect() {
      const counts = await readQueueJobCounts(db, workerSchema);
      this.reset();
      for (const state of Object.keys(counts) as (keyof QueueJobCounts)[])
        this.set({ state }, counts[state]);
    },
  });

  const failures = cataloguedCounter(registry, "gleaner_job_failures_total");
  // Gleaner's task does not throw: it reports a job it could not finish as a runtime event.
  // graphile-worker's "job:failed" (no attempts left) still counts the jobs it failed itself,
  // on a shutdown; "job:error" would count every attempt of a job that later succeeds.
  const onFailed = () => failures.inc();
  const workerEvents = new EventEmitter() as WorkerEvents;
  workerEvents.on("job:failed", onFailed);
  runtimeEvents.on("job:failed", onFailed);
  return {
    workerEvents,
    detach: () => {
      workerEvents.off("job:failed", onFailed);
      runtimeEvents.off("job:failed", onFailed);
    },
  };
}
