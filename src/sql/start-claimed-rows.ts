import { sql, type RawBuilder } from "kysely";
import type { Db } from "../db/connect-database.ts";
import type { InstalledPipeline } from "../pipeline/installed-pipeline.ts";
import type { RowSnapshot, RowState } from "../pipeline/row-state.ts";

interface SnapshotRow {
  key: string;
  xmin: string;
  inputs: Record<string, unknown>;
  outputs: Record<string, unknown>;
  state: RowState | null;
  attempts: number;
}

/** What a job reads of a row: key, xmin (for guarded writes), inputs, outputs, state. */
function snapshotColumns(p: InstalledPipeline): RawBuilder<unknown> {
  const fields = (cols: readonly string[]) =>
    sql.join(cols.map((col) => sql`${sql.lit(col)}::text, ${sql.ref(`t.${col}`)}`));
  return sql`${sql.ref(`t.${p.key}`)}::text as key, t.xmin::text as xmin,
      jsonb_build_object(${fields([p.key, ...p.inputs])}) as inputs,
      jsonb_build_object(${fields(p.outputs.map((o) => o.name))}) as outputs,
      ${sql.ref(`t.${p.columns.state}`)} as state,
      ${sql.ref(`t.${p.columns.attempts}`)} as attempts`;
}

function toSnapshot(r: SnapshotRow): RowSnapshot {
  return {
    key: r.key,
    xmin: r.xmin,
    inputs: r.inputs,
    values: r.outputs,
    state: r.state ?? {},
    attempts: r.attempts,
  };
}

/** `t.key = any($keys)` and `t.claim = $claim`: the fence every job statement carries. */
export function heldByClaim(
  p: InstalledPipeline,
  claim: string,
  keys: readonly string[],
): RawBuilder<unknown> {
  return sql`${sql.ref(`t.${p.key}`)} = any(${keys}::${sql.raw(p.keyType)}[])
      and ${sql.ref(`t.${p.columns.claim}`)} = ${claim}::uuid`;
}

/**
 * A job takes its rows from queued to running and reads them, in one statement.
 *
 * Why it is safe: the `claim = $claim` condition is the fence. A row whose claim was replaced by
 * a later sweep (lease expired) or cleared by a user's reset is not returned, so this job never
 * touches it. `running` is accepted too so a retried job can resume rows it already started.
 * The lease starts now: the sweep takes the rows back if nobody renews it.
 */
export async function startClaimedRows(
  db: Db,
  p: InstalledPipeline,
  claim: string,
  keys: readonly string[],
): Promise<RowSnapshot[]> {
  const c = p.columns;
  const result = await sql<SnapshotRow>`
    update ${sql.table(`${p.table.schema}.${p.table.name}`)} t set
      ${sql.id(c.status)} = 'running',
      ${sql.id(c.nextAt)} = now() + ${p.leaseMs} * interval '1 millisecond'
    where ${heldByClaim(p, claim, keys)}
      and ${sql.ref(`t.${c.status}`)} in ('queued', 'running')
    returning ${snapshotColumns(p)}
  `.execute(db);
  // In the job's key order (the sweep sorts them), not the scan's: the same rows are then
  // batched into the same prompts every time, which the LLM answer cache needs to answer them.
  const place = new Map(keys.map((k, i) => [k, i]));
  return result.rows
    .map(toSnapshot)
    .sort((a, b) => (place.get(a.key) ?? 0) - (place.get(b.key) ?? 0));
}

/** Re-reads rows this job still holds, after a guarded write found them changed. */
export async function rereadClaimedRows(
  db: Db,
  p: InstalledPipeline,
  claim: string,
  keys: readonly string[],
): Promise<RowSnapshot[]> {
  const result = await sql<SnapshotRow>`
    select ${snapshotColumns(p)}
    from ${sql.table(`${p.table.schema}.${p.table.name}`)} t
    where ${heldByClaim(p, claim, keys)}
  `.execute(db);
  return result.rows.map(toSnapshot);
}
