import type { Counter, Histogram, Registry } from "prom-client";
import { cataloguedCounter, cataloguedHistogram } from "./catalogued-metric.ts";

/**
 * The sweep's metrics. The scheduler reports each tick through its onSweep callback rather than
 * an event, so the caller that starts it feeds these (src/cli/commands/run-commands.ts).
 */
export function createSweepMetrics(registry: Registry): {
  sweepClaimed: Counter<"pipeline">;
  sweepDuration: Histogram<"pipeline">;
} {
  return {
    sweepClaimed: cataloguedCounter(registry, "gleaner_sweep_rows_claimed_total"),
    sweepDuration: cataloguedHistogram(registry, "gleaner_sweep_duration_seconds", {
      // A tick is about a millisecond with nothing due and a few hundred with 10,000 rows due.
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 5],
    }),
  };
}
