import { sql } from "kysely";
import type { Db } from "../db/connect-database.ts";
import type { ColumnProvenance } from "../pipeline/row-state.ts";

export type ReviewAction = "approve" | "reject" | "edit";
export const REVIEW_ACTIONS: readonly ReviewAction[] = ["approve", "reject", "edit"];

export interface ReviewRequest {
  pipeline: string;
  key: string;
  column: string;
  action: ReviewAction;
  /** The new value (edit only), as JSON; converted to the column's type by PostgreSQL. */
  value?: unknown;
  by?: string;
}

/**
 * Approves, rejects or edits one value through `<schema>.review` (migrations/000013), the one
 * definition of a review, which the SQL front door, the API and the status page all use.
 * Returns the column's new provenance. Its errors keep their SQLSTATE: P0002 when the pipeline
 * or row does not exist, class 22 when the request is wrong (action, column, value).
 *
 * Why it is safe: the function locks the row (FOR UPDATE) between reading and writing it, and a
 * job holding the row re-reads and merges when the row's xmin changed (guarded-writer.ts).
 */
export async function reviewValue(
  db: Db,
  schema: string,
  r: ReviewRequest,
): Promise<ColumnProvenance> {
  const value = r.value === undefined ? null : JSON.stringify(r.value);
  const { rows } = await sql<{ provenance: ColumnProvenance }>`
    select ${sql.id(schema, "review")}(${r.pipeline}, ${r.key}, ${r.column}, ${r.action},
      ${value}::jsonb, ${r.by ?? null}) as provenance`.execute(db);
  return (rows[0] as { provenance: ColumnProvenance }).provenance;
}

/** The first `limit` entries of `<schema>.review_queue`, of one pipeline or all. */
export async function readReviewQueue(
  db: Db,
  schema: string,
  pipeline: string | undefined,
  limit: number,
): Promise<Record<string, unknown>[]> {
  const { rows } = await sql<Record<string, unknown>>`
    select * from ${sql.id(schema, "review_queue_rows")}(${pipeline ?? null}, ${limit}::integer) limit ${limit}`.execute(
    db,
  );
  return rows;
}
