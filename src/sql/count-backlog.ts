import { sql, type RawBuilder } from "kysely";
import type { Db } from "../db/connect-database.ts";
import type { InstalledPipeline } from "../pipeline/installed-pipeline.ts";

/** The backlog gauge counts up to this many rows and saturates there. */
export const BACKLOG_CAP = 10_000;

/**
 * Rows due now and not claimed: pending rows, failed rows at their retry time, low-confidence
 * rows at their re-check time. Queued and running rows are left out even when their lease ran
 * out (their next_at is the lease deadline): they are claimed, and the sweep takes them back.
 *
 * Cost: `next_at <= now()` implies the due index's predicate (`next_at is not null`), so the
 * rows are found through that index, never by a scan of the table; rows with no due time (done,
 * exhausted) are not in the index at all. Each due row costs one index entry and one heap visit (the status is
 * not in the index), and the `limit` stops the count at `cap` rows: a scrape reads at most
 * `cap` due rows however large the backlog. Exported as a builder so a test can EXPLAIN it.
 */
export function backlogQuery(
  p: InstalledPipeline,
  cap = BACKLOG_CAP,
): RawBuilder<{ rows: string }> {
  const c = p.columns;
  return sql<{ rows: string }>`
    select count(*) as rows from (
      select 1 from ${sql.table(`${p.table.schema}.${p.table.name}`)}
      where ${sql.id(c.nextAt)} <= now() and ${sql.id(c.status)} not in ('queued', 'running')
      limit ${cap}
    ) due
  `;
}

export async function countBacklog(
  db: Db,
  p: InstalledPipeline,
  cap = BACKLOG_CAP,
): Promise<number> {
  const result = await backlogQuery(p, cap).execute(db);
  return Number(result.rows[0]?.rows ?? 0);
}
