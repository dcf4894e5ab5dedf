import { sql } from "kysely";
import type { Db } from "../db/connect-database.ts";
import type { InstalledPipeline } from "../pipeline/installed-pipeline.ts";

/** The bucket holds at most five minutes of the rate: an idle hour does not release a burst. */
const BURST_MS = 5 * 60_000;

/**
 * Drift (`on_version_change: reprocess`): makes up to the pipeline's allowance of `done` rows
 * produced by another pipeline version due now. They keep their stage records, so the sweep
 * that claims them (src/sql/claim-due-rows.ts, a new cycle for a done row) re-runs only the
 * stages whose recipe changed, and the rest are reused (src/pipeline/stage-reuse.ts).
 *
 * The allowance is a token bucket in <schema>.drift_allowance, refilled at
 * `drift_rows_per_hour` by the caller's clock (`nowMs`), at most five minutes' worth. A new
 * pipeline's bucket starts empty: the first rows go a refill after the change, not at once.
 *
 * Why it is safe and cheap:
 * - The bucket row is locked by the upsert until commit, so sweepers in any number of processes
 *   take turns, and together release no more than the rate.
 * - Finding the rows is two range probes of the partial expression index on
 *   `(<state> ->> 'version') where status = 'done'` (`version < current`, `version > current`),
 *   each stopping after `allowance` rows: the cost follows the allowance, not the table. Rows
 *   already due (released but not yet claimed) are passed over; there are at most a tick's worth.
 * - `for update skip locked` leaves rows another transaction holds (a user's update, a sweep
 *   claiming them) alone; the update only sets `next_at`, which no trigger watches, so nothing is
 *   reset and the status counters do not move.
 * Returns how many rows were released.
 */
export async function releaseDriftedRows(
  db: Db,
  gleanerSchema: string,
  p: InstalledPipeline,
  nowMs: number,
): Promise<number> {
  if (p.onVersionChange !== "reprocess") return 0;
  const c = p.columns;
  const t = sql.table(`${p.table.schema}.${p.table.name}`);
  const version = sql`(${sql.ref(`t.${c.state}`)} ->> 'version')`;
  const status = sql.ref(`t.${c.status}`);
  const nextAt = sql.ref(`t.${c.nextAt}`);
  const allowance = sql.table(`${gleanerSchema}.drift_allowance`);
  const perMs = p.driftRowsPerHour / 3_600_000;
  const burst = Math.max(1, p.driftRowsPerHour * (BURST_MS / 3_600_000));
  const now = new Date(nowMs);
  return db.transaction().execute(async (trx) => {
    const bucket = await sql<{ tokens: number }>`
      insert into ${allowance} as d (pipeline, tokens, refilled_at) values (${p.name}, 0, ${now})
      on conflict (pipeline) do update set
        tokens = least(${burst}::float8, d.tokens
          + greatest(0, extract(epoch from (${now}::timestamptz - d.refilled_at)) * 1000) * ${perMs}::float8),
        refilled_at = greatest(d.refilled_at, ${now}::timestamptz)
      returning tokens
    `.execute(trx);
    const take = Math.floor(bucket.rows[0]?.tokens ?? 0);
    if (take < 1) return 0;
    const probe = (op: "<" | ">") => sql`
      select ${sql.ref(`t.${p.key}`)} as k from ${t} t
      where ${status} = 'done' and ${version} ${sql.raw(op)} ${p.version}
        and (${nextAt} is null or ${nextAt} > now())
      order by ${version} ${sql.raw(op === "<" ? "desc" : "asc")}
      limit ${take}
      for update of t skip locked`;
    const released = await sql<{ n: number }>`
      with below as (${probe("<")}), above as (${probe(">")}), drifted as (
        select k from below union all select k from above limit ${take}
      ), released as (
        update ${t} t set ${sql.id(c.nextAt)} = now()
        where ${sql.ref(`t.${p.key}`)} = any(array(select k from drifted))
        returning 1
      )
      select count(*)::int as n from released
    `.execute(trx);
    const n = released.rows[0]?.n ?? 0;
    if (n > 0)
      await sql`update ${allowance} set tokens = tokens - ${n} where pipeline = ${p.name}`.execute(
        trx,
      );
    return n;
  });
}
