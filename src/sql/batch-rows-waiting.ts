import { sql } from "kysely";
import type { Db } from "../db/connect-database.ts";
import type { InstalledPipeline } from "../pipeline/installed-pipeline.ts";

/**
 * Rows of a pipeline waiting for a Batch API answer: `pending` with `state.batch` set
 * (src/pipeline/settle-row.ts). A read-only count, no locks; it reads the pending rows only.
 */
export async function countBatchRowsWaiting(db: Db, p: InstalledPipeline): Promise<number> {
  const c = p.columns;
  const result = await sql<{ n: number }>`
    select count(*)::int as n from ${sql.table(`${p.table.schema}.${p.table.name}`)}
    where ${sql.id(c.status)} = 'pending' and ${sql.id(c.state)} ? 'batch'
  `.execute(db);
  return result.rows[0]?.n ?? 0;
}
