import { sql, type Transaction } from "kysely";
import type { Db } from "../db/connect-database.ts";
import type { GleanerDatabase } from "../db/database-types.ts";

/**
 * The batches of `mode: batch` backends (<schema>.llm_batches, migrations/000012). Every step
 * that talks to the Batch API is recorded before it is taken, so that any process can take over
 * a batch another one started (src/llm/batch/).
 */

type Trx = Transaction<GleanerDatabase>;

export interface OpenedBatch {
  id: string;
  marker: string;
}

/**
 * Puts the queued requests of `backend` into a new batch, in state `submitting`, when there
 * are `maxRequests` of them or the oldest has waited `windowMs`; undefined otherwise.
 *
 * Why it is safe: the requests are locked `for update skip locked`, so two processes opening
 * batches at once take disjoint requests; the batch row and its requests are written in one
 * transaction and committed before anything is uploaded, so a crash at any later point leaves
 * a `submitting` batch that sendBatch finds again by its marker (nothing is submitted twice,
 * nothing is lost).
 */
export async function openDueBatch(
  db: Db,
  schema: string,
  backend: string,
  windowMs: number,
  maxRequests: number,
): Promise<OpenedBatch | undefined> {
  const requests = sql.table(`${schema}.llm_batch_requests`);
  return db.transaction().execute(async (trx) => {
    const queued = await sql<{ custom_id: string; ripe: boolean }>`
      select custom_id::text, created_at <= now() - ${windowMs} * interval '1 millisecond' as ripe
      from ${requests}
      where backend = ${backend} and state = 'queued'
      order by created_at limit ${maxRequests}
      for update skip locked
    `.execute(trx);
    const ids = queued.rows.map((r) => r.custom_id);
    if (ids.length === 0) return undefined;
    if (ids.length < maxRequests && !queued.rows[0]?.ripe) return undefined;
    const batch = await sql<{ id: string; marker: string }>`
      insert into ${sql.table(`${schema}.llm_batches`)} (backend, marker, state, requests)
      values (${backend}, gen_random_uuid(), 'submitting', ${ids.length})
      returning id::text, marker::text
    `.execute(trx);
    const opened = batch.rows[0] as OpenedBatch;
    await sql`
      update ${requests} set batch_id = ${opened.id}::bigint, state = 'submitted'
      where custom_id = any(${ids}::uuid[])
    `.execute(trx);
    return opened;
  });
}

export interface BatchLine {
  customId: string;
  body: unknown;
}

export async function batchLines(db: Db | Trx, schema: string, id: string): Promise<BatchLine[]> {
  const result = await sql<{ custom_id: string; body: unknown }>`
    select custom_id::text, body from ${sql.table(`${schema}.llm_batch_requests`)}
    where batch_id = ${id}::bigint order by created_at, custom_id
  `.execute(db);
  return result.rows.map((r) => ({ customId: r.custom_id, body: r.body }));
}

export interface OpenBatch {
  id: string;
  marker: string;
  state: "submitting" | "in_flight";
  apiBatchId: string | null;
  /** Seconds since the epoch, database clock, when the batch was opened. */
  createdAt: number;
  ageMs: number;
}

/** Batches of `backend` still to submit or to poll, oldest first. */
export async function openBatches(db: Db, schema: string, backend: string): Promise<OpenBatch[]> {
  const result = await sql<{
    id: string;
    marker: string;
    state: "submitting" | "in_flight";
    api_batch_id: string | null;
    created_at: number;
    age_ms: number;
  }>`
    select id::text, marker::text, state, api_batch_id,
      extract(epoch from created_at)::float8 as created_at,
      (extract(epoch from now() - created_at) * 1000)::float8 as age_ms
    from ${sql.table(`${schema}.llm_batches`)}
    where backend = ${backend} and state in ('submitting', 'in_flight')
    order by id
  `.execute(db);
  return result.rows.map((r) => ({
    id: r.id,
    marker: r.marker,
    state: r.state,
    apiBatchId: r.api_batch_id,
    createdAt: r.created_at,
    ageMs: r.age_ms,
  }));
}

/**
 * Locks a `submitting` batch for the transaction that submits it; false when another process
 * holds it (it is submitting it right now) or it was submitted meanwhile. `skip locked`: two
 * processes never send the same batch at once.
 */
export async function lockSubmitting(trx: Trx, schema: string, id: string): Promise<boolean> {
  const result = await sql`
    select 1 from ${sql.table(`${schema}.llm_batches`)}
    where id = ${id}::bigint and state = 'submitting'
    for update skip locked
  `.execute(trx);
  return result.rows.length > 0;
}

export async function recordSubmitted(
  trx: Trx,
  schema: string,
  id: string,
  apiBatchId: string,
  inputFileId: string | null,
): Promise<void> {
  await sql`
    update ${sql.table(`${schema}.llm_batches`)}
    set state = 'in_flight', api_batch_id = ${apiBatchId}, input_file_id = ${inputFileId},
      submitted_at = now()
    where id = ${id}::bigint and state = 'submitting'
  `.execute(trx);
}

export interface LineOutcome {
  customId: string;
  state: "answered" | "failed";
  response?: unknown;
  reason?: string;
  savedUsd?: number;
}

/**
 * Ends an in-flight batch: records each line's outcome, fails the requests no line answered
 * with `missingReason`, and returns the requests it settled by pipeline, for the rows' resume.
 * Undefined when the batch was no longer in flight: another process applied it already, and
 * applying it again would do nothing (this is what makes applying twice a no-op).
 *
 * Why it is safe: the batch row is updated first, guarded by `state = 'in_flight'`, so of two
 * processes applying the same batch the second blocks on the row lock and then matches nothing;
 * request updates are guarded by `state = 'submitted'` as well. Run in the same transaction as
 * the resume of the rows, so an answer is recorded if and only if its rows are made due.
 */
export async function finishBatch(
  trx: Trx,
  schema: string,
  id: string,
  outcome: { state: "done" | "failed"; reason: string | null },
  lines: readonly LineOutcome[],
  missingReason: string,
): Promise<Map<string, string[]> | undefined> {
  const requests = sql.table(`${schema}.llm_batch_requests`);
  const finished = await sql`
    update ${sql.table(`${schema}.llm_batches`)}
    set state = ${outcome.state}, reason = ${outcome.reason}, finished_at = now()
    where id = ${id}::bigint and state = 'in_flight'
    returning 1
  `.execute(trx);
  if (finished.rows.length === 0) return undefined;
  if (lines.length > 0) {
    const json = JSON.stringify(
      lines.map((l) => ({
        custom_id: l.customId,
        state: l.state,
        response: l.response ?? null,
        reason: l.reason ?? null,
        saved_usd: l.savedUsd ?? 0,
      })),
    );
    await sql`
      update ${requests} r
      set state = x.state, response = x.response, reason = x.reason, saved_usd = x.saved_usd,
        answered_at = now()
      from jsonb_to_recordset(${json}::jsonb)
        as x(custom_id uuid, state text, response jsonb, reason text, saved_usd float8)
      where r.custom_id = x.custom_id and r.batch_id = ${id}::bigint and r.state = 'submitted'
    `.execute(trx);
  }
  await sql`
    update ${requests} set state = 'failed', reason = ${missingReason}, answered_at = now()
    where batch_id = ${id}::bigint and state = 'submitted'
  `.execute(trx);
  const settled = await sql<{ pipeline: string; ids: string[] }>`
    select pipeline, array_agg(custom_id::text) as ids from ${requests}
    where batch_id = ${id}::bigint group by pipeline
  `.execute(trx);
  return new Map(settled.rows.map((r) => [r.pipeline, r.ids]));
}

export interface BatchGauges {
  inFlight: number;
  waitingRequests: number;
  savedUsd: number;
}

/** For the metrics: batches not yet finished, requests not yet answered, USD saved so far. */
export async function batchGauges(db: Db, schema: string): Promise<BatchGauges> {
  const result = await sql<{ in_flight: number; waiting: number; saved: number }>`
    select
      (select count(*) from ${sql.table(`${schema}.llm_batches`)}
        where state in ('submitting', 'in_flight'))::int as in_flight,
      (select count(*) from ${sql.table(`${schema}.llm_batch_requests`)}
        where state in ('queued', 'submitted'))::int as waiting,
      (select coalesce(sum(saved_usd), 0) from ${sql.table(`${schema}.llm_batch_requests`)}
        where consumed_at is not null and state = 'answered')::float8 as saved
  `.execute(db);
  const row = result.rows[0];
  return {
    inFlight: row?.in_flight ?? 0,
    waitingRequests: row?.waiting ?? 0,
    savedUsd: row?.saved ?? 0,
  };
}
