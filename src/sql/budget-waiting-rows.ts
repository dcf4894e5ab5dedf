import { sql } from "kysely";
import type { Db } from "../db/connect-database.ts";
import type { InstalledPipeline } from "../pipeline/installed-pipeline.ts";

/** Past this, the count stops: the gauge says "at least", a scrape stays cheap. */
export const WAITING_ROWS_CAP = 10_000;

/**
 * Rows of `p` waiting for a budget window (failed with last_run outcome budget_exhausted). Only
 * rows with a due time are looked at, through the pipeline's due index, and at most
 * WAITING_ROWS_CAP of them; a plain read that locks nothing.
 */
export async function countBudgetWaitingRows(db: Db, p: InstalledPipeline): Promise<number> {
  const c = p.columns;
  const { rows } = await sql<{ n: number }>`
    select count(*)::int as n from (
      select 1 from ${sql.table(`${p.table.schema}.${p.table.name}`)}
      where ${sql.ref(c.nextAt)} is not null and ${sql.ref(c.status)} = 'failed'
        and ${sql.ref(c.state)} -> 'last_run' ->> 'outcome' = 'budget_exhausted'
      limit ${WAITING_ROWS_CAP}
    ) waiting
  `.execute(db);
  return rows[0]?.n ?? 0;
}
