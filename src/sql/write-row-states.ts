import { sql } from "kysely";
import { jsonHasUnstorableText, storableJson } from "../core/storable-text.ts";
import type { Db } from "../db/connect-database.ts";
import { PG_TYPE } from "../core/output-types.ts";
import type { InstalledPipeline } from "../pipeline/installed-pipeline.ts";
import type { RowState } from "../pipeline/row-state.ts";
import type { RowStatus } from "../db/pipeline-ddl.ts";
import { heldByClaim } from "./start-claimed-rows.ts";

export interface RowWrite {
  key: string;
  /** The xmin this job last saw; the write applies only if the row is unchanged since. */
  xmin: string;
  state: RowState;
  status: RowStatus;
  /** Milliseconds from now until the row is due again; null when it is not due again. */
  nextInMs: number | null;
  /** Final writes only: */
  values?: Record<string, unknown>;
  confidence?: number | null;
  enriched?: boolean;
  attempts?: number;
}

/**
 * Writes many rows' state (and, on the final write, their output values) in one statement from
 * a JSON array.
 *
 * Why it is safe:
 * - `claim = $claim` fences off a job whose rows were taken back (lease expired) or reset by a
 *   user: its late writes match nothing.
 * - The keys are also given as an array (`key = any($keys)`), so the rows are found through the
 *   key's index: the planner takes jsonb_to_recordset for 100 rows and, on a table of some ten
 *   thousand, joined it to a scan of the whole table on every write-back.
 * - `xmin = $xmin` makes each write conditional on the row being exactly as this job last read
 *   it, so a value a user wrote meanwhile is never overwritten. Rows that fail the check are
 *   returned as missing; the caller re-reads them and merges again.
 * - A final write clears the claim, so a retried or duplicate job cannot write the row twice.
 * - The state is made storable (a NUL or lone surrogate from a page or an answer replaced), so
 *   evidence text never fails the statement. Output values are written as they are: one that
 *   PostgreSQL refuses fails the statement with a data exception (class 22), and the caller
 *   (GuardedWriter) writes the rows one by one to fail that row alone.
 */
export async function writeRowStates(
  db: Db,
  p: InstalledPipeline,
  claim: string,
  writes: readonly RowWrite[],
  final: boolean,
): Promise<Map<string, string>> {
  if (writes.length === 0) return new Map();
  const c = p.columns;
  const outputDefs = final
    ? p.outputs.map((o) => sql`${sql.id(o.name)} ${sql.raw(PG_TYPE[o.type])}`)
    : [];
  const recordType = sql.join([
    sql`k text, xmin text, state jsonb, status text, next_in_ms double precision, confidence real, enriched boolean, attempts integer`,
    ...outputDefs,
  ]);
  const sets = [
    sql`${sql.id(c.state)} = x.state`,
    sql`${sql.id(c.status)} = x.status`,
    sql`${sql.id(c.nextAt)} = now() + x.next_in_ms * interval '1 millisecond'`,
  ];
  if (final) {
    sets.push(
      sql`${sql.id(c.claim)} = null`,
      sql`${sql.id(c.confidence)} = coalesce(x.confidence, ${sql.ref(`t.${c.confidence}`)})`,
      sql`${sql.id(c.attempts)} = coalesce(x.attempts, ${sql.ref(`t.${c.attempts}`)})`,
      sql`${sql.id(c.enrichedAt)} = case when x.enriched then now() else ${sql.ref(`t.${c.enrichedAt}`)} end`,
      ...p.outputs.map((o) => sql`${sql.id(o.name)} = x.${sql.id(o.name)}`),
    );
  }
  const rows = writes.map((w) => ({
    k: w.key,
    xmin: w.xmin,
    state: w.state,
    status: w.status,
    next_in_ms: w.nextInMs,
    confidence: w.confidence ?? null,
    enriched: w.enriched ?? false,
    attempts: w.attempts ?? null,
    ...(final ? w.values : {}),
  }));
  const result = await sql<{ key: string; xmin: string }>`
    update ${sql.table(`${p.table.schema}.${p.table.name}`)} t set ${sql.join(sets)}
    from jsonb_to_recordset(${rowsJson(rows)}::jsonb) as x(${recordType})
    where ${sql.ref(`t.${p.key}`)} = x.k::${sql.raw(p.keyType)}
      and ${heldByClaim(
        p,
        claim,
        writes.map((w) => w.key),
      )}
      and t.xmin = x.xmin::xid
    returning ${sql.ref(`t.${p.key}`)}::text as key, t.xmin::text as xmin
  `.execute(db);
  return new Map(result.rows.map((r) => [r.key, r.xmin]));
}

/** The rows as JSON, each state made storable; output values untouched (see above). */
function rowsJson(rows: readonly { state: unknown }[]): string {
  const text = JSON.stringify(rows);
  if (!jsonHasUnstorableText(text)) return text;
  return JSON.stringify(
    rows.map((r) => ({ ...r, state: JSON.parse(storableJson(r.state)) as unknown })),
  );
}
