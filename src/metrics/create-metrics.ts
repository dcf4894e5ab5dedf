import { batchApiBackends } from "../config/batch-backends.ts";
import type { WorkerEvents } from "graphile-worker";
import { Registry, type Counter, type Histogram } from "prom-client";
import type { Runtime } from "../pipeline/runtime.ts";
import { registerBudgetCollectors } from "./budget-collectors.ts";
import { registerConcurrencyCollectors } from "./concurrency-collectors.ts";
import { registerLlmBatchCollectors } from "./llm-batch-collectors.ts";
import { registerLlmBudgetGauge } from "./llm-budget-gauge.ts";
import { registerProcessMetrics } from "./process-metrics.ts";
import { registerQueueCollectors } from "./queue-collectors.ts";
import { registerRowStateCollectors } from "./row-state-collectors.ts";
import { registerValueAgeCollectors } from "./value-age-collectors.ts";
import { attachResearchEventMetrics } from "./research-event-metrics.ts";
import { attachRuntimeEventMetrics } from "./runtime-event-metrics.ts";
import { createSweepMetrics } from "./sweep-metrics.ts";
import { registerWorkerCollectors } from "./worker-collectors.ts";

export interface Metrics {
  registry: Registry;
  /** Fed by the scheduler's onSweep callback. */
  sweepClaimed: Counter<"pipeline">;
  sweepDuration: Histogram<"pipeline">;
  /** Hand to startWorker({ events }) so jobs that fail for good are counted. */
  workerEvents: WorkerEvents;
  /** Unsubscribes from the runtime's and the worker's events; the registry stays readable. */
  close(): void;
}

/**
 * The /metrics registry: every metric of src/metrics/metric-catalogue.ts plus the default
 * process metrics. Database-backed gauges are read at scrape time from counters and index
 * probes, so a scrape costs the same on a table of any size; the rest is counted in memory from
 * the runtime's and graphile-worker's events.
 */
export function createMetrics(runtime: Runtime): Metrics {
  const registry = new Registry();
  registerProcessMetrics(registry);
  const { db, config } = runtime;
  const pipelines = [...runtime.pipelines.values()].map((e) => e.pipeline);

  registerRowStateCollectors(registry, db, config.schema, pipelines);
  registerValueAgeCollectors(registry, db, pipelines, runtime.clock);
  const detachRuntime = attachRuntimeEventMetrics(registry, runtime);
  const detachResearch = attachResearchEventMetrics(registry, runtime);
  registerLlmBudgetGauge(registry, config);
  const detachBudget = registerBudgetCollectors(registry, runtime);
  registerConcurrencyCollectors(registry, runtime);
  const queue = registerQueueCollectors(registry, db, config.workerSchema, runtime.events);
  const sweep = createSweepMetrics(registry);
  registerWorkerCollectors(registry, db, config.schema);
  registerLlmBatchCollectors(
    registry,
    db,
    config.schema,
    () => pipelines,
    batchApiBackends(config).length > 0,
  );

  return {
    registry,
    ...sweep,
    workerEvents: queue.workerEvents,
    close() {
      detachRuntime();
      detachResearch();
      detachBudget();
      queue.detach();
    },
  };
}
