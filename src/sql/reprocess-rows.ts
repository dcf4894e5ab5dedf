import { sql } from "kysely";
import type { Db } from "../db/connect-database.ts";
import type { InstalledPipeline } from "../pipeline/installed-pipeline.ts";

export interface ReprocessFilter {
  /** A boolean SQL expression over the table's columns, written by the operator. */
  where?: string;
  status?: "failed" | "exhausted" | "done" | "pending";
  below?: number;
}

/**
 * Makes rows pending again with a fresh attempt count: the same effect as the reset trigger,
 * for rows that have nothing to clear (failed and exhausted rows have no confidence yet).
 * Values already found are kept; the next run replaces them only with better answers.
 *
 * Why it is safe: clearing the claim fences off any worker holding one of these rows; the
 * `--where` text comes from the operator's own command line and runs with their privileges.
 */
export async function reprocessRows(
  db: Db,
  p: InstalledPipeline,
  filter: ReprocessFilter,
): Promise<number> {
  const c = p.columns;
  const conditions = [sql`true`];
  if (filter.status) conditions.push(sql`${sql.id(c.status)} = ${filter.status}`);
  if (filter.below !== undefined) conditions.push(sql`${sql.id(c.confidence)} < ${filter.below}`);
  if (filter.where) conditions.push(sql`(${sql.raw(filter.where)})`);
  const result = await sql`
    update ${sql.table(`${p.table.schema}.${p.table.name}`)} set
      ${sql.id(c.status)} = 'pending',
      ${sql.id(c.attempts)} = 0,
      ${sql.id(c.nextAt)} = now(),
      ${sql.id(c.claim)} = null,
      ${sql.id(c.state)} = jsonb_set(coalesce(${sql.id(c.state)}, '{}') - 'stages', '{reset}',
        jsonb_build_object('at', now(), 'reason', 'reprocess command'))
    where ${sql.join(conditions, sql` and `)}
  `.execute(db);
  return Number(result.numAffectedRows ?? 0);
}
