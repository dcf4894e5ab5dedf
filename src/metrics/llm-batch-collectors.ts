import type { Registry } from "prom-client";
import type { Db } from "../db/connect-database.ts";
import type { InstalledPipeline } from "../pipeline/installed-pipeline.ts";
import { countBatchRowsWaiting } from "../sql/batch-rows-waiting.ts";
import { batchGauges } from "../sql/llm-batches.ts";
import { cataloguedGauge } from "./catalogued-metric.ts";

/**
 * The Batch API (`mode: batch`): batches in flight, rows waiting per pipeline, and the USD the
 * discount saved, read from the database at scrape time (the same for every process). With no
 * backend in batch mode nothing is read (the gauges show 0, the per-pipeline one no sample):
 * counting waiting rows reads a pipeline's pending rows, a cost paid only by batch users.
 */
export function registerLlmBatchCollectors(
  registry: Registry,
  db: Db,
  schema: string,
  pipelines: () => readonly InstalledPipeline[],
  enabled: boolean,
): void {
  cataloguedGauge(registry, "gleaner_llm_batches_in_flight", {
    async collect() {
      if (enabled) this.set((await batchGauges(db, schema)).inFlight);
    },
  });
  cataloguedGauge(registry, "gleaner_llm_batch_saved_usd", {
    async collect() {
      if (enabled) this.set((await batchGauges(db, schema)).savedUsd);
    },
  });
  cataloguedGauge(registry, "gleaner_llm_batch_rows_waiting", {
    async collect() {
      this.reset();
      if (!enabled) return;
      for (const p of pipelines())
        this.set({ pipeline: p.name }, await countBatchRowsWaiting(db, p));
    },
  });
}
