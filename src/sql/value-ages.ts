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
 * bucket and the oldest, measured from when the stage found it (`columns.<c>.at`), by the
 * database's clock.
 *
 * Cost: one pass over the table, all ttl columns together. That is why /metrics does not run it
 * on every scrape but at most every few minutes (src/metrics/value-age-collectors.ts): the
 * figure moves by minutes on ttls counted in days. It only reads, taking no lock a writer waits
 * for. To keep the pass cheap, each row's `at` is read once (the subquery is kept apart by
 * `offset 0`) and compared as text, byte-wise, with the buckets' bounds written the same way
 * (`toISOString()`: fixed width, UTC, so text order is time order): no timestamp is parsed per
 * row. Columns without a ttl are not read.
 */
export async function readValueAges(
  db: Db,
  p: InstalledPipeline,
): Promise<Record<string, ColumnAges>> {
  const columns = Object.keys(p.ttlMs);
  if (columns.length === 0) return {};
  const clock = await sql<{
    now: string;
  }>`select (extract(epoch from now()) * 1000)::float8::text as now`.execute(db);
  const nowMs = Number(clock.rows[0]?.now);
  const bound = (seconds: number) => new Date(nowMs - seconds * 1000).toISOString();
  const state = sql.ref(`t.${p.columns.state}`);
  const picked = sql.join(
    columns.map(
      (c, i) => sql`case when ${sql.ref(`t.${c}`)} is not null
        then ${state} -> 'columns' -> ${c}::text ->> 'at' end collate "C" as ${sql.id(`a${i}`)}`,
    ),
  );
  const aggregates = sql.join(
    columns.map((_, i) => {
      const a = sql.ref(`x.a${i}`);
      const buckets = sql.join(
        VALUE_AGE_BUCKETS.map((b) => sql`count(*) filter (where ${a} >= ${bound(b)})::float8`),
      );
      return sql`count(${a})::float8 as ${sql.id(`n${i}`)}, min(${a}) as ${sql.id(`o${i}`)},
        array[${buckets}] as ${sql.id(`b${i}`)}`;
    }),
  );
  const result = await sql<Record<string, unknown>>`
    select ${aggregates}
    from (select ${picked} from ${sql.table(`${p.table.schema}.${p.table.name}`)} t offset 0) x
  `.execute(db);
  const row = result.rows[0] ?? {};
  const out: Record<string, ColumnAges> = {};
  columns.forEach((c, i) => {
    const oldest = row[`o${i}`];
    const at = typeof oldest === "string" ? Date.parse(oldest) : Number.NaN;
    out[c] = {
      count: Number(row[`n${i}`] ?? 0),
      oldestSeconds: Number.isNaN(at) ? null : (nowMs - at) / 1000,
      atMost: ((row[`b${i}`] as number[] | undefined) ?? VALUE_AGE_BUCKETS.map(() => 0)).map(
        Number,
      ),
    };
  });
  return out;
}
