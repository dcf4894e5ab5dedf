import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import type { Runtime } from "../pipeline/runtime.ts";
import { readRowCounts } from "../sql/row-counts.ts";
import { oldestDue } from "../sql/has-due-rows.ts";
import { STATUSES } from "../db/pipeline-ddl.ts";

export interface Metrics {
  registry: Registry;
  sweepClaimed: Counter<"pipeline">;
  sweepDuration: Histogram<"pipeline">;
}

/**
 * The /metrics registry. Row counts come from the trigger-kept counters and the due index, so a
 * scrape costs a few index probes whatever the table size.
 */
export function createMetrics(runtime: Runtime): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: "gleaner_process_" });
  const { db, config } = runtime;
  const pipelines = [...runtime.pipelines.values()].map((e) => e.pipeline);

  new Gauge({
    name: "gleaner_rows",
    help: "Rows per pipeline and status.",
    labelNames: ["pipeline", "status"] as const,
    registers: [registry],
    async collect() {
      this.reset();
      for (const p of pipelines) {
        const counts = await readRowCounts(db, config.schema, p.name);
        for (const status of STATUSES) this.set({ pipeline: p.name, status }, counts[status] ?? 0);
      }
    },
  });
  new Gauge({
    name: "gleaner_completeness_ratio",
    help: "Done rows with every output filled, over all rows.",
    labelNames: ["pipeline"] as const,
    registers: [registry],
    async collect() {
      this.reset();
      for (const p of pipelines) {
        const counts = await readRowCounts(db, config.schema, p.name);
        const total = STATUSES.reduce((sum, s) => sum + (counts[s] ?? 0), 0);
        this.set({ pipeline: p.name }, total === 0 ? 1 : (counts.complete ?? 0) / total);
      }
    },
  });
  new Gauge({
    name: "gleaner_oldest_due_age_seconds",
    help: "Age of the oldest row that is due and not yet claimed (0 when none).",
    labelNames: ["pipeline"] as const,
    registers: [registry],
    async collect() {
      this.reset();
      for (const p of pipelines) {
        const { ageSeconds } = await oldestDue(db, p);
        this.set({ pipeline: p.name }, Math.max(0, ageSeconds ?? 0));
      }
    },
  });
  return {
    registry,
    sweepClaimed: new Counter({
      name: "gleaner_sweep_rows_claimed_total",
      help: "Rows claimed and enqueued by sweeps.",
      labelNames: ["pipeline"] as const,
      registers: [registry],
    }),
    sweepDuration: new Histogram({
      name: "gleaner_sweep_duration_seconds",
      help: "Duration of one sweep tick.",
      labelNames: ["pipeline"] as const,
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 5],
      registers: [registry],
    }),
  };
}
