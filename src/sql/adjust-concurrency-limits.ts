import { sql } from "kysely";
import type { Db } from "../db/connect-database.ts";

export interface LimitChange {
  endpoint: string;
  /** Lower the fleet-wide limit to at most this; null for no decrease. */
  decreaseTo: number | null;
  /** Then add this (additive increases earned by this process since its last write). */
  increase: number;
  /** Pause new calls for this long from now (Retry-After); 0 for no pause. */
  pauseMs: number;
}

/**
 * Applies what one process learnt about its endpoints to the fleet-wide rows:
 * global_limit = least(global_limit, decreaseTo) + increase, kept within the row's bounds, and
 * paused_until pushed out to the longest Retry-After any process saw.
 *
 * Why it is safe under concurrency: each row's new value is computed from its current value
 * inside the UPDATE, which holds the row lock; a concurrent update waits and then re-reads the
 * committed row (READ COMMITTED re-evaluation), so no increase is lost. Decreases are absolute
 * targets combined with least(), so processes hit by the same burst of 429s (all asking for half
 * the limit their calls were sent under) lower it once, not once each, and in any order.
 * `greatest` does the same for pauses. The rows are locked in endpoint order first, so two
 * processes adjusting several endpoints at once cannot deadlock.
 */
export async function adjustConcurrencyLimits(
  db: Db,
  schema: string,
  changes: readonly LimitChange[],
): Promise<void> {
  if (changes.length === 0) return;
  const table = sql.table(`${schema}.concurrency_limits`);
  await sql`
    with a as (
      select * from unnest(
        ${changes.map((c) => c.endpoint)}::text[], ${changes.map((c) => c.decreaseTo)}::int[],
        ${changes.map((c) => c.increase)}::int[], ${changes.map((c) => c.pauseMs)}::float8[]
      ) as a(endpoint, decrease_to, increase, pause_ms)
    ), locked as (
      select endpoint from ${table}
      where endpoint in (select endpoint from a)
      order by endpoint
      for update
    )
    update ${table} c set
      global_limit = least(c.max_limit, greatest(c.min_limit,
        least(c.global_limit, coalesce(a.decrease_to, c.global_limit)) + a.increase)),
      paused_until = case when a.pause_ms > 0
        then greatest(c.paused_until, now() + a.pause_ms * interval '1 millisecond')
        else c.paused_until end,
      updated_at = now()
    from a
    where c.endpoint = a.endpoint and c.endpoint in (select endpoint from locked)
  `.execute(db);
}
