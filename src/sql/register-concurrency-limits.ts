import { sql } from "kysely";
import type { Db } from "../db/connect-database.ts";

export interface EndpointBounds {
  endpoint: string;
  initial: number;
  min: number;
  max: number;
}

/**
 * Makes sure each endpoint has its row in <schema>.concurrency_limits: a new one starts at
 * `initial`; an existing one keeps its limit (what the fleet has learnt) but takes this
 * process's bounds, clamped into them, so a changed max_concurrency applies on the next start.
 *
 * Why it is safe under concurrency: `insert … on conflict` is atomic per row, so two processes
 * registering the same endpoint at once end with one row; the rows are inserted in endpoint
 * order, so two processes registering several endpoints lock them in the same order and cannot
 * deadlock. Processes started with different bounds for one endpoint take turns setting them,
 * and the limit is clamped in the same statement, so the row's check constraint always holds.
 */
export async function registerConcurrencyLimits(
  db: Db,
  schema: string,
  endpoints: readonly EndpointBounds[],
): Promise<void> {
  if (endpoints.length === 0) return;
  const rows = [...endpoints].sort((a, b) => (a.endpoint < b.endpoint ? -1 : 1));
  await sql`
    insert into ${sql.table(`${schema}.concurrency_limits`)} as c
      (endpoint, global_limit, min_limit, max_limit)
    select endpoint, initial, min, max
    from unnest(
      ${rows.map((r) => r.endpoint)}::text[], ${rows.map((r) => r.initial)}::int[],
      ${rows.map((r) => r.min)}::int[], ${rows.map((r) => r.max)}::int[]
    ) with ordinality as a(endpoint, initial, min, max, n)
    order by n
    on conflict (endpoint) do update set
      min_limit = excluded.min_limit,
      max_limit = excluded.max_limit,
      global_limit = least(excluded.max_limit, greatest(excluded.min_limit, c.global_limit)),
      updated_at = now()
  `.execute(db);
}
