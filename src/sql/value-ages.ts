import { sql } from "kysely";
import type { Db } from "../db/connect-database.ts";
import type { InstalledPipeline } from "../pipeline/installed-pipeline.ts";

/** Upper bounds (seconds) of the value age buckets: an hour, six hours, a day, a week, 30, 90,
 * 180 and 365 days. */
export const VALUE_AGE_BUCKETS = [
  3_600, 21_600, 86_400, 604_800, 2_592_000, 7_776_000, 15_552_000, 31_536_000,
] as const;

export interface ColumnAges {
  /** Values Gleaner found that the column holds (user-written ones have no age). */
  count: number;
  /** Age of the oldest of them; null when there is none. */
  oldestSeconds: number | null;
  /** Per VALUE_AGE_BUCKETS bound: how many are at most that old (cumulative). */
  atMost: number[];
}

/**
 * The age of every value of the pipeline's ttl columns (`outputs.<c>.ttl`), as counts per age
 * bucket and the oldest, measured from when the stage found it (`columns.<c>.at`).
 *
 * Cost: one pass over the table, all ttl columns together. That is why /metrics does not run it
 * on every scrape but at most every few minutes (src/metrics/value-age-collectors.ts): the
 * figure moves by minutes on ttls counted in days. It only reads, taking no lock a writer waits
 * for. Columns without a ttl are not read.
 */
export async function readValueAges(
  db: Db,
  p: InstalledPipeline,
): Promise<Record<string, ColumnAges>> {
  const columns = Object.keys(p.ttlMs);
  if (columns.length === 0) return {};
  const state = sql.ref(`t.${p.columns.state}`);
  const ages = sql.join(
    columns.map(
      (c) => sql`(${c}::text, case when ${sql.ref(`t.${c}`)} is not null then
        extract(epoch from now() - (${state} -> 'columns' -> ${c}::text ->> 'at')::timestamptz)
      end)`,
    ),
  );
  const buckets = sql.join(
    VALUE_AGE_BUCKETS.map((b) => sql`count(*) filter (where x.age <= ${b})::float8`),
  );
  const result = await sql<{ col: string; n: number; oldest: number | null; at_most: number[] }>`
    select x.col, count(*)::float8 as n, max(x.age)::float8 as oldest,
      array[${buckets}] as at_most
    from ${sql.table(`${p.table.schema}.${p.table.name}`)} t
    cross join lateral (values ${ages}) as x(col, age)
    where x.age is not null
    group by x.col
  `.execute(db);
  const out: Record<string, ColumnAges> = {};
  for (const c of columns)
    out[c] = { count: 0, oldestSeconds: null, atMost: VALUE_AGE_BUCKETS.map(() => 0) };
  for (const row of result.rows)
    out[row.col] = { count: row.n, oldestSeconds: row.oldest, atMost: row.at_most };
  return out;
}
