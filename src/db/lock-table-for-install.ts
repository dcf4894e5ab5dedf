import { sql, type Transaction } from "kysely";
import type { PipelineConfig } from "../config/config-types.ts";
import type { GleanerDatabase } from "./database-types.ts";
import { dropsAnIndexSql, tableRef } from "./pipeline-ddl.ts";
import { stateColumns } from "./state-columns.ts";

export type InstallLock = "share row exclusive" | "access exclusive";

/**
 * Takes, first thing in the install transaction, the one table lock the install needs, and says
 * which: its DDL then never upgrades a lock it holds (an upgrade would deadlock against a user's
 * transaction that read the table and now waits to write it).
 *
 * Why the weaker lock is enough on an upgrade: SHARE ROW EXCLUSIVE is what `create or replace
 * trigger` takes, and the strongest the rest needs (`create index if not exists`, the recount's
 * reads and the triggers' install all fit under it). It keeps writers out, which the recount
 * needs (no change may fall between the count and the triggers that follow it), and lets
 * readers read. ACCESS EXCLUSIVE, which keeps readers out too, is taken only when a statement
 * needs it: a state or output column to add (ALTER TABLE), an index to drop (the version index
 * after `on_version_change` stops being `reprocess`, a review index built for another
 * `review_below` that the concurrent builds did not replace), or a partitioned table, whose
 * indexes and per-partition triggers are all installed here.
 */
export async function lockTableForInstall(
  trx: Transaction<GleanerDatabase>,
  pipeline: PipelineConfig,
  table: { columns: readonly string[]; partitioned: boolean },
): Promise<InstallLock> {
  const c = stateColumns(pipeline);
  const wanted = [c.status, c.confidence, c.state, c.attempts, c.nextAt, c.claim, c.enrichedAt];
  wanted.push(...pipeline.outputs.map((o) => o.name));
  const columnMissing = wanted.some((name) => !table.columns.includes(name));
  const mode: InstallLock =
    columnMissing || table.partitioned || (await dropsAnIndex(trx, pipeline))
      ? "access exclusive"
      : "share row exclusive";
  await sql.raw(`lock table ${tableRef(pipeline)} in ${mode} mode`).execute(trx);
  return mode;
}

/** Whether the DDL will drop an index (dropsAnIndexSql in pipeline-ddl.ts). */
async function dropsAnIndex(
  trx: Transaction<GleanerDatabase>,
  pipeline: PipelineConfig,
): Promise<boolean> {
  const result = await sql<{ drops: boolean }>`
    select (${sql.raw(dropsAnIndexSql(pipeline))}) as drops`.execute(trx);
  return result.rows[0]?.drops ?? false;
}
