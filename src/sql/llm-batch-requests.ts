import { sql } from "kysely";
import type { Db } from "../db/connect-database.ts";

/**
 * The requests of `mode: batch` backends (<schema>.llm_batch_requests, migrations/000012): a
 * stage's call is queued here instead of being sent live, and its answer is read from here when
 * the rows run again after the batch came back (src/llm/batch/batch-mode-backend.ts).
 */

export interface QueuedRequest {
  customId: string;
  backend: string;
  requestKey: string;
  pipeline: string;
  stage: string;
  body: unknown;
}

export async function queueBatchRequest(db: Db, schema: string, r: QueuedRequest): Promise<void> {
  await sql`
    insert into ${sql.table(`${schema}.llm_batch_requests`)}
      (custom_id, backend, request_key, pipeline, stage, body, state)
    values (${r.customId}::uuid, ${r.backend}, ${r.requestKey}, ${r.pipeline}, ${r.stage},
      ${JSON.stringify(r.body)}::jsonb, 'queued')
  `.execute(db);
}

/** A request for the same question still on its way (queued or in a batch), if any. */
export async function openRequestFor(
  db: Db,
  schema: string,
  backend: string,
  requestKey: string,
): Promise<string | undefined> {
  const result = await sql<{ custom_id: string }>`
    select custom_id::text from ${sql.table(`${schema}.llm_batch_requests`)}
    where backend = ${backend} and request_key = ${requestKey} and consumed_at is null
      and state in ('queued', 'submitted')
    order by created_at limit 1
  `.execute(db);
  return result.rows[0]?.custom_id;
}

export interface TakenAnswer {
  customId: string;
  state: "answered" | "failed";
  response: unknown;
  reason: string | null;
}

/**
 * Takes the oldest outcome (answer or failure) of this question that no stage has read yet, and
 * marks it read in the same statement.
 *
 * Why it is safe: `for update skip locked` in the subquery and `consumed_at is null` in the
 * update mean two jobs asking at once never get the same outcome; an outcome is handed out once,
 * so a batch answer is applied (and its cost counted) once. A job that crashes after taking it
 * leaves its rows to come back after their lease; they then queue the question again.
 */
export async function takeBatchOutcome(
  db: Db,
  schema: string,
  backend: string,
  requestKey: string,
): Promise<TakenAnswer | undefined> {
  const t = sql.table(`${schema}.llm_batch_requests`);
  const result = await sql<{
    custom_id: string;
    state: "answered" | "failed";
    response: unknown;
    reason: string | null;
  }>`
    update ${t} set consumed_at = now()
    where custom_id = (
      select custom_id from ${t}
      where backend = ${backend} and request_key = ${requestKey} and consumed_at is null
        and state in ('answered', 'failed')
      order by created_at limit 1
      for update skip locked
    ) and consumed_at is null
    returning custom_id::text, state, response, reason
  `.execute(db);
  const row = result.rows[0];
  return row
    ? { customId: row.custom_id, state: row.state, response: row.response, reason: row.reason }
    : undefined;
}
