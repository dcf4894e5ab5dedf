import type { Registry } from "prom-client";
import type { Clock } from "../core/clock.ts";
import type { Db } from "../db/connect-database.ts";
import type { InstalledPipeline } from "../pipeline/installed-pipeline.ts";
import { readValueAges, VALUE_AGE_BUCKETS, type ColumnAges } from "../sql/value-ages.ts";
import { cataloguedGauge } from "./catalogued-metric.ts";

/** How old the value age figures may get before a scrape reads them again. */
export const VALUE_AGE_REFRESH_MS = 5 * 60_000;

/**
 * Freshness gauges for the columns that declare a `ttl`: the oldest value's age, how many values
 * are at most each bucket's age old (a cumulative histogram by `le`, as histogram_quantile reads
 * it), and the ttl itself, so an alert can compare the two.
 *
 * The ages take one pass over the table (src/sql/value-ages.ts), so they are read at most every
 * VALUE_AGE_REFRESH_MS, by the first scrape after that; scrapes in between serve the figure
 * read last, and ages counted in days move little in five minutes. Pipelines without a ttl
 * column cost nothing: the gauges are exported without samples.
 */
export function registerValueAgeCollectors(
  registry: Registry,
  db: Db,
  pipelines: readonly InstalledPipeline[],
  clock: Clock,
): void {
  const watched = pipelines.filter((p) => Object.keys(p.ttlMs).length > 0);
  let figure: { at: number; ages: Map<string, Record<string, ColumnAges>> } | undefined;
  let reading: Promise<Map<string, Record<string, ColumnAges>>> | undefined;
  const read = async (): Promise<Map<string, Record<string, ColumnAges>>> => {
    if (watched.length === 0) return new Map();
    if (figure && clock.now() - figure.at < VALUE_AGE_REFRESH_MS) return figure.ages;
    reading ??= (async () => {
      try {
        const entries = await Promise.all(
          watched.map(async (p) => [p.name, await readValueAges(db, p)] as const),
        );
        figure = { at: clock.now(), ages: new Map(entries) };
        return figure.ages;
      } finally {
        reading = undefined;
      }
    })();
    return reading;
  };

  cataloguedGauge(registry, "gleaner_value_age_seconds", {
    async collect() {
      const ages = await read();
      this.reset();
      for (const [pipeline, columns] of ages)
        for (const [column, a] of Object.entries(columns))
          if (a.oldestSeconds !== null)
            this.set({ pipeline, column }, Math.max(0, a.oldestSeconds));
    },
  });
  cataloguedGauge(registry, "gleaner_value_age_rows", {
    async collect() {
      const ages = await read();
      this.reset();
      for (const [pipeline, columns] of ages)
        for (const [column, a] of Object.entries(columns)) {
          VALUE_AGE_BUCKETS.forEach((bound, i) =>
            this.set({ pipeline, column, le: String(bound) }, a.atMost[i] ?? 0),
          );
          this.set({ pipeline, column, le: "+Inf" }, a.count);
        }
    },
  });
  cataloguedGauge(registry, "gleaner_value_ttl_seconds", {
    collect() {
      this.reset();
      for (const p of watched)
        for (const [column, ms] of Object.entries(p.ttlMs))
          this.set({ pipeline: p.name, column }, ms / 1000);
    },
  });
}
