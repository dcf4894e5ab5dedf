import { sql } from "kysely";
import type { Db } from "../db/connect-database.ts";

export interface SharedLimit {
  globalLimit: number;
  /** Milliseconds left of the endpoint's Retry-After pause, by the database's clock; 0 if none. */
  pausedForMs: number;
}

export interface SharedLimits {
  /** Worker processes whose heartbeat is younger than `aliveSeconds`. */
  liveWorkers: number;
  limits: Map<string, SharedLimit>;
}

/**
 * The fleet-wide limits of the given endpoints and the number of live workers sharing them, in
 * one statement, read by every process about once a second. The pause comes back as time left
 * rather than a timestamp, so clock skew between hosts does not stretch or shorten it.
 *
 * Cost: a primary-key lookup per endpoint and a scan of gleaner.workers (one row per worker
 * process). Read only; takes no locks beyond the usual snapshot.
 */
export async function readConcurrencyLimits(
  db: Db,
  schema: string,
  endpoints: readonly string[],
  aliveSeconds: number,
): Promise<SharedLimits> {
  const result = await sql<{
    live_workers: number;
    endpoint: string | null;
    global_limit: number | null;
    paused_ms: number | null;
  }>`
    select w.live_workers, c.endpoint, c.global_limit,
      greatest(0, extract(epoch from c.paused_until - now()) * 1000)::float8 as paused_ms
    from (
      select count(*)::int as live_workers from ${sql.table(`${schema}.workers`)}
      where heartbeat_at > now() - ${aliveSeconds} * interval '1 second'
    ) w
    left join ${sql.table(`${schema}.concurrency_limits`)} c on c.endpoint = any(${[...endpoints]}::text[])
  `.execute(db);
  const limits = new Map<string, SharedLimit>();
  for (const row of result.rows) {
    if (row.endpoint === null || row.global_limit === null) continue;
    limits.set(row.endpoint, {
      globalLimit: row.global_limit,
      pausedForMs: Number(row.paused_ms ?? 0),
    });
  }
  return { liveWorkers: result.rows[0]?.live_workers ?? 0, limits };
}
