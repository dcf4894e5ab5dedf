import type { Registry } from "prom-client";
import type { Db } from "../db/connect-database.ts";
import { STATUSES } from "../db/pipeline-ddl.ts";
import type { InstalledPipeline } from "../pipeline/installed-pipeline.ts";
import { countBacklog } from "../sql/count-backlog.ts";
import { oldestDue } from "../sql/has-due-rows.ts";
import { readRowCounts } from "../sql/row-counts.ts";
import { cataloguedGauge } from "./catalogued-metric.ts";
import { perScrape } from "./per-scrape.ts";

interface PipelineRows {
  pipeline: InstalledPipeline;
  /** Per status, plus `complete`, `low_confidence` and `filled:<column>` (see pipeline-ddl.ts). */
  counts: Record<string, number>;
  total: number;
  backlog: number;
  oldestDueAgeSeconds: number;
}

/**
 * The row gauges, read when Prometheus scrapes. Nothing here scans a pipeline table: counts come
 * from the trigger-kept counters in gleaner.row_counts, the backlog and the oldest due row from
 * the due index (src/sql/count-backlog.ts, src/sql/has-due-rows.ts). Each pipeline is read once
 * per scrape, and all six gauges are filled from that one read.
 */
export function registerRowStateCollectors(
  registry: Registry,
  db: Db,
  schema: string,
  pipelines: readonly InstalledPipeline[],
): void {
  const read = perScrape(() =>
    Promise.all(
      pipelines.map(async (pipeline): Promise<PipelineRows> => {
        const [counts, backlog, oldest] = await Promise.all([
          readRowCounts(db, schema, pipeline.name),
          countBacklog(db, pipeline),
          oldestDue(db, pipeline, { unclaimed: true }),
        ]);
        const total = STATUSES.reduce((sum, s) => sum + (counts[s] ?? 0), 0);
        // The age can come out a hair below 0 when next_at was set by this very statement's now().
        const oldestDueAgeSeconds = Math.max(0, oldest.ageSeconds ?? 0);
        return { pipeline, counts, total, backlog, oldestDueAgeSeconds };
      }),
    ),
  );
  // An empty table has nothing left to fill: both ratios are 1 there, not 0/0.
  const ratio = (part: number, total: number) => (total === 0 ? 1 : part / total);

  cataloguedGauge(registry, "gleaner_rows", {
    async collect() {
      const rows = await read();
      this.reset();
      for (const r of rows)
        for (const status of STATUSES)
          this.set({ pipeline: r.pipeline.name, status }, r.counts[status] ?? 0);
    },
  });
  cataloguedGauge(registry, "gleaner_completeness_ratio", {
    async collect() {
      const rows = await read();
      this.reset();
      for (const r of rows)
        this.set({ pipeline: r.pipeline.name }, ratio(r.counts.complete ?? 0, r.total));
    },
  });
  cataloguedGauge(registry, "gleaner_column_fill_ratio", {
    async collect() {
      const rows = await read();
      this.reset();
      for (const r of rows)
        for (const output of r.pipeline.outputs)
          this.set(
            { pipeline: r.pipeline.name, column: output.name },
            ratio(r.counts[`filled:${output.name}`] ?? 0, r.total),
          );
    },
  });
  cataloguedGauge(registry, "gleaner_low_confidence_rows", {
    async collect() {
      const rows = await read();
      this.reset();
      for (const r of rows) this.set({ pipeline: r.pipeline.name }, r.counts.low_confidence ?? 0);
    },
  });
  cataloguedGauge(registry, "gleaner_backlog_rows", {
    async collect() {
      const rows = await read();
      this.reset();
      for (const r of rows) this.set({ pipeline: r.pipeline.name }, r.backlog);
    },
  });
  cataloguedGauge(registry, "gleaner_oldest_due_age_seconds", {
    async collect() {
      const rows = await read();
      this.reset();
      for (const r of rows) this.set({ pipeline: r.pipeline.name }, r.oldestDueAgeSeconds);
    },
  });
}
