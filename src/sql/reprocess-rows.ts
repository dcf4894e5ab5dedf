import { sql } from "kysely";
import type { Db } from "../db/connect-database.ts";
import { stagesFilling } from "../db/pipeline-ddl.ts";
import type { InstalledPipeline } from "../pipeline/installed-pipeline.ts";

export interface ReprocessFilter {
  /** A boolean SQL expression over the table's columns, written by the operator. */
  where?: string;
  status?: "failed" | "exhausted" | "done" | "pending";
  below?: number;
  /** These rows only (the status page's reprocess button). */
  keys?: readonly string[];
  /** Kept as the row's `state.reset.reason`; defaults to `reprocess command`. */
  reason?: string;
}

/**
 * The row's state without the records of the stages that fill outputs, as a status reset leaves
 * it (src/db/pipeline-ddl.ts): those answer again, from the LLM answer cache when nothing
 * changed; the research stages' records are reused while their recipe and inputs hold.
 */
function keepResearch(p: InstalledPipeline) {
  const state = sql`coalesce(${sql.ref(p.columns.state)}, '{}')`;
  return sql`case when jsonb_typeof(${state} -> 'stages') = 'object'
      then jsonb_set(${state}, '{stages}',
        (${state} -> 'stages') - ${stagesFilling(
          p,
          p.outputs.map((o) => o.name),
        )}::text[])
      else ${state} - 'stages' end`;
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
  if (filter.keys)
    conditions.push(sql`${sql.ref(p.key)} = any(${filter.keys}::${sql.raw(p.keyType)}[])`);
  const result = await sql`
    update ${sql.table(`${p.table.schema}.${p.table.name}`)} set
      ${sql.id(c.status)} = 'pending',
      ${sql.id(c.attempts)} = 0,
      ${sql.id(c.nextAt)} = now(),
      ${sql.id(c.claim)} = null,
      ${sql.id(c.state)} = jsonb_set(${keepResearch(p)}, '{reset}',
        jsonb_build_object('at', now(), 'reason', ${filter.reason ?? "reprocess command"}::text))
    where ${sql.join(conditions, sql` and `)}
  `.execute(db);
  return Number(result.numAffectedRows ?? 0);
}
