import { sql } from "kysely";
import type { Db } from "../db/connect-database.ts";
import type { InstalledPipeline } from "../pipeline/installed-pipeline.ts";

export interface FailureReport {
  byClass: { error_class: string; rows: number }[];
  worst: { key: string; status: string; attempts: number; error: unknown }[];
}

/**
 * Failed and exhausted rows grouped by the class of their last error, and the most recent of
 * them. Reads through the partial `failures` index, so its cost follows the number of failing
 * rows (capped at 100,000), not the table.
 */
export async function failureReport(db: Db, p: InstalledPipeline): Promise<FailureReport> {
  const c = p.columns;
  const table = sql.table(`${p.table.schema}.${p.table.name}`);
  const failing = sql`${sql.ref(`t.${c.status}`)} in ('failed', 'exhausted')`;
  const byClass = await sql<{ error_class: string; rows: number }>`
    select coalesce(${sql.ref(`t.${c.state}`)} -> 'errors' -> -1 ->> 'class', 'unknown') as error_class,
      count(*)::int as rows
    from (select * from ${table} t where ${failing} limit 100000) t
    group by 1 order by 2 desc
  `.execute(db);
  const worst = await sql<{ key: string; status: string; attempts: number; error: unknown }>`
    select ${sql.ref(`t.${p.key}`)}::text as key, ${sql.ref(`t.${c.status}`)} as status,
      ${sql.ref(`t.${c.attempts}`)} as attempts,
      ${sql.ref(`t.${c.state}`)} -> 'errors' -> -1 as error
    from ${table} t where ${failing}
    order by ${sql.ref(`t.${p.key}`)} desc limit 20
  `.execute(db);
  return { byClass: byClass.rows, worst: worst.rows };
}
