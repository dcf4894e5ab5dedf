import { sql, type RawBuilder } from "kysely";
import type { Db } from "../db/connect-database.ts";
import type { RowStatus } from "../db/pipeline-ddl.ts";
import type { InstalledPipeline } from "../pipeline/installed-pipeline.ts";

export interface DueFilter {
  /** Only rows in this status (`gleaner status` asks for pending rows). */
  status?: RowStatus;
  /**
   * Leave out queued and running rows. Their next_at is their lease deadline, so one of them is
   * "due" only once its worker died; /metrics counts those as claimed, not as waiting.
   */
  unclaimed?: boolean;
}

/**
 * The oldest due row's due time and age. Exported as a builder so a test can EXPLAIN it.
 *
 * Cost: min(next_at) under `next_at <= now()` is planned as an ordered scan of the due index
 * that stops at the first row passing the filter, so it reads one index entry and one heap row
 * (a few more when the filter skips rows at the front), whatever the size of the table.
 */
export function oldestDueQuery(
  p: InstalledPipeline,
  filter: DueFilter = {},
): RawBuilder<{ oldest: Date | null; age: number | null }> {
  const c = p.columns;
  const status = filter.status ? sql`and ${sql.id(c.status)} = ${filter.status}` : sql``;
  const unclaimed = filter.unclaimed
    ? sql`and ${sql.id(c.status)} not in ('queued', 'running')`
    : sql``;
  return sql<{ oldest: Date | null; age: number | null }>`
    select min(${sql.id(c.nextAt)}) as oldest,
      extract(epoch from now() - min(${sql.id(c.nextAt)}))::float8 as age
    from ${sql.table(`${p.table.schema}.${p.table.name}`)}
    where ${sql.id(c.nextAt)} <= now() ${status} ${unclaimed}
  `;
}

/** Whether any row is due now (one probe of the due index) and how old the oldest is. */
export async function oldestDue(
  db: Db,
  p: InstalledPipeline,
  filter: DueFilter = {},
): Promise<{ due: boolean; ageSeconds: number | null }> {
  const result = await oldestDueQuery(p, filter).execute(db);
  const row = result.rows[0];
  return { due: row?.oldest != null, ageSeconds: row?.age ?? null };
}
