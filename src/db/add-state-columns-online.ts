import { sql, type Kysely } from "kysely";
import type { PipelineConfig } from "../config/config-types.ts";
import { PG_TYPE } from "../core/output-types.ts";
import type { GleanerDatabase } from "./database-types.ts";
import { assertKeyIsUnique, checkColumns, readColumns } from "./install-pipeline-table.ts";
import { stateColumnDefinitions, statusCheck, tableRef } from "./pipeline-ddl.ts";
import { quoteIdent } from "./quote-identifier.ts";
import { stateColumns } from "./state-columns.ts";
import {
  DEFAULT_TABLE_LOCK_PATIENCE,
  limitLockWait,
  withTableLockPatience,
  type TableLockPatience,
} from "./table-lock-patience.ts";

/**
 * The first install on a user's existing table, without holding it: adds Gleaner's state
 * columns and the outputs the table lacks before the index builds and the install transaction
 * (src/db/migrate.ts). In the install transaction the same ALTER TABLE validated the status
 * CHECK by a scan, and the indexes were then built, all under the table's ACCESS EXCLUSIVE lock:
 * reads and writes of a big production table stopped for the whole of it. Returns whether it
 * added anything.
 *
 * Why it is safe:
 * - The table is checked first exactly as the install checks it (key unique, inputs present,
 *   outputs of compatible types), so a table the install would refuse is left untouched.
 * - ADD COLUMN with a constant or stable default (`now()`) and no CHECK is a catalog change,
 *   no rewrite and no scan: its ACCESS EXCLUSIVE lock is held for milliseconds. Existing rows
 *   read as pending and due at once, as they did.
 * - The CHECK is added NOT VALID (catalog only; every row written from then on is checked) and
 *   validated afterwards, which scans under SHARE UPDATE EXCLUSIVE: reads and writes go on.
 * - Columns and CHECK are added in one transaction; the next `migrate` validates a CHECK a
 *   migrator killed before validating left NOT VALID. Until
 *   the install transaction has run, no Gleaner process works on the table (the pipeline is not
 *   installed), and rows written meanwhile are counted by its recount.
 * - The migrators' advisory lock (the install transaction's) serialises this with them.
 * - A table not there yet (the install creates it) or partitioned (PostgreSQL 15 builds no index
 *   concurrently on one, so the install holds it anyway) is left to the install, as before.
 */
export async function addStateColumnsOnline(
  db: Kysely<GleanerDatabase>,
  pipeline: PipelineConfig,
  patience: TableLockPatience = DEFAULT_TABLE_LOCK_PATIENCE,
): Promise<boolean> {
  const table = tableRef(pipeline);
  const check = statusCheck(pipeline);
  const name = `${pipeline.table.schema}.${pipeline.table.name}`;
  const added = await withTableLockPatience(name, patience, () =>
    addColumns(db, pipeline, patience),
  );

  const [constraint] = (
    await sql<{ valid: boolean }>`
      select convalidated as valid from pg_constraint
      where conrelid = to_regclass(${table}) and conname = ${check.name}`.execute(db)
  ).rows;
  if (constraint?.valid === false) {
    try {
      await sql
        .raw(`alter table ${table} validate constraint ${quoteIdent(check.name)}`)
        .execute(db);
    } catch (error) {
      throw new Error(
        `column ${pipeline.table.schema}.${pipeline.table.name}.${stateColumns(pipeline).status} holds values other than Gleaner's statuses (${check.clause}); fix those rows or choose another pipelines.${pipeline.name}.prefix, then run gleaner migrate again`,
        { cause: error },
      );
    }
  }
  return added;
}

/** The transaction: checks, then one catalog-only ALTER TABLE (and the CHECK, NOT VALID). */
function addColumns(
  db: Kysely<GleanerDatabase>,
  pipeline: PipelineConfig,
  patience: TableLockPatience,
): Promise<boolean> {
  const table = tableRef(pipeline);
  const check = statusCheck(pipeline);
  return db.transaction().execute(async (trx) => {
    await sql`select pg_advisory_xact_lock(hashtext(${"gleaner:install:" + pipeline.name}))`.execute(
      trx,
    );
    await limitLockWait(trx, patience);
    const [kind] = (
      await sql<{ kind: string }>`
        select c.relkind as kind from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = ${pipeline.table.schema} and c.relname = ${pipeline.table.name}`.execute(
        trx,
      )
    ).rows;
    if (kind?.kind !== "r") return false;
    const columns = await readColumns(trx, pipeline);
    const has = (name: string) => columns.some((c) => c.name === name);
    const c = stateColumns(pipeline);
    const state = [c.status, c.confidence, c.state, c.attempts, c.nextAt, c.claim, c.enrichedAt];
    const outputs = pipeline.outputs.filter((o) => !has(o.name));
    const [constraint] = (
      await sql<{ valid: boolean }>`
        select convalidated as valid from pg_constraint
        where conrelid = ${table}::regclass and conname = ${check.name}`.execute(trx)
    ).rows;
    if (state.every(has) && outputs.length === 0) return false;
    checkColumns(pipeline, columns);
    await assertKeyIsUnique(trx, pipeline);
    const definitions = [
      ...stateColumnDefinitions(pipeline),
      ...outputs.map((o) => `${quoteIdent(o.name)} ${PG_TYPE[o.type]}`),
    ];
    await sql
      .raw(
        `alter table ${table} ${definitions.map((d) => `add column if not exists ${d}`).join(", ")}`,
      )
      .execute(trx);
    // With the status column it adds (a status column already there kept its own rules before).
    if (!has(c.status) && constraint === undefined)
      await sql
        .raw(
          `alter table ${table} add constraint ${quoteIdent(check.name)} ${check.clause} not valid`,
        )
        .execute(trx);
    return true;
  });
}
