import { sql, type Transaction } from "kysely";
import type { PipelineConfig } from "../config/config-types.ts";
import type { GleanerDatabase } from "./database-types.ts";
import { countFunctionBody, objectName, type TablePartition } from "./pipeline-ddl.ts";
import { quoteIdent } from "./quote-identifier.ts";

/** The count triggers each table (and each partition) carries: see triggerSql. */
const COUNT_TRIGGERS = ["count_ins", "count_upd", "count_del", "count_trunc"];

/**
 * Whether a pipeline's counters in `<schema>.row_counts` are right as they stand, so that an
 * upgrade reinstalling its DDL need not recount the table (a scan that holds the table's writers,
 * about 0.2-0.45 s per million rows).
 *
 * Why skipping the recount is then safe: the counters are the sum of the deltas the count
 * triggers appended for every statement since the last recount. They stay exact as long as
 * those triggers fired for every write and counted the way the new ones will. So this holds only
 * when, checked before the DDL runs and under the install's lock (no write in between,
 * lock-table-for-install.ts):
 * - the pipeline was installed on this same table (a pipeline moved to another table counts
 *   other rows);
 * - the installed count function's body is exactly the one about to be installed (same
 *   outputs, min_confidence, partitions: the same counting);
 * - the triggers calling that function are exactly the count triggers of the table and of each
 *   of its partitions now, all enabled: one disabled or dropped by hand missed writes, and a
 *   partition attached or detached since the last install brought or took rows without any
 *   trigger firing (a detached one keeps its triggers, so every later upgrade recounts).
 * Anything else, and the first install, recounts.
 */
export async function countersAreCurrent(
  trx: Transaction<GleanerDatabase>,
  pipeline: PipelineConfig,
  gleanerSchema: string,
  installed: { tableSchema: string; tableName: string } | undefined,
  partitions: readonly TablePartition[],
): Promise<boolean> {
  if (
    installed?.tableSchema !== pipeline.table.schema ||
    installed.tableName !== pipeline.table.name
  )
    return false;
  const fn = `${quoteIdent(gleanerSchema)}.${quoteIdent(objectName(pipeline.name, "count"))}()`;
  const tables = [pipeline.table, ...partitions].map(
    (t) => `${quoteIdent(t.schema)}.${quoteIdent(t.name)}`,
  );
  const triggers = COUNT_TRIGGERS.map((suffix) => objectName(pipeline.name, suffix));
  const expected = tables.length * triggers.length;
  const result = await sql<{ current: boolean }>`
    with calls as (
      select tr.tgrelid = any(array(select to_regclass(t) from unnest(${tables}::text[]) t))
          and tr.tgname = any(${triggers}::text[])
          and tr.tgenabled in ('O', 'A') as expected
      from pg_trigger tr where tr.tgfoid = to_regprocedure(${fn})
    )
    select coalesce((select prosrc = ${countFunctionBody(pipeline, gleanerSchema, partitions)}
        from pg_proc where oid = to_regprocedure(${fn})), false)
      and (select count(*) filter (where expected) = ${expected} and count(*) = ${expected}
        from calls) as current
  `.execute(trx);
  return result.rows[0]?.current ?? false;
}
