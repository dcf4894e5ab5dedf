import { sql, type Transaction } from "kysely";
import type { GleanerDatabase } from "../db/database-types.ts";
import type { InstalledPipeline } from "../pipeline/installed-pipeline.ts";
import { ENRICH_TASK } from "./claim-due-rows.ts";

/**
 * Rows waiting for Batch API requests whose outcome just came back are claimed and given a job,
 * one job per request, so the stage runs again over exactly the rows that asked the question and
 * is answered from the batch (src/llm/batch/batch-mode-backend.ts). Returns how many rows.
 *
 * Why it is safe:
 * - Only rows still `pending` that name the request in `state.batch.request` are taken: a row a
 *   user reset, or that another resume already took, no longer matches, so it is neither
 *   overwritten nor run twice. `for update` waits for a job writing the row right now.
 * - Claiming and `add_jobs` are one statement, as in claim-due-rows.ts: a row is `queued` if and
 *   only if a job carrying its claim exists.
 * - Keys are sorted as the sweep sorts a job's keys, so the stage chunks them as it did when it
 *   asked: the same rows in the same order make the same prompt, which is how the answer is
 *   found again.
 * - The claim counts an attempt like the sweep's; waiting for the batch gave the one it took back.
 * - Run in the transaction that records the batch's outcomes (src/sql/llm-batches.ts
 *   finishBatch), so rows are made due if and only if their answers are recorded.
 */
export async function resumeBatchRows(
  trx: Transaction<GleanerDatabase>,
  workerSchema: string,
  p: InstalledPipeline,
  requests: readonly string[],
): Promise<number> {
  if (requests.length === 0) return 0;
  const t = sql.table(`${p.table.schema}.${p.table.name}`);
  const c = p.columns;
  const key = sql.ref(`t.${p.key}`);
  const state = sql.ref(`t.${c.state}`);
  const result = await sql<{ resumed: number }>`
    with waiting as (
      select ${key} as k, ${state} -> 'batch' ->> 'request' as request
      from ${t} t
      where ${sql.ref(`t.${c.status}`)} = 'pending'
        and ${state} -> 'batch' ->> 'request' = any(${requests}::text[])
      for update
    ), batches as (
      select request, gen_random_uuid() as claim, array_agg(k order by k) as keys,
        array_agg((extract(epoch from now()) * 1000)::bigint) as due
      from waiting group by request
    ), claimed as (
      update ${t} t set
        ${sql.id(c.status)} = 'queued',
        ${sql.id(c.claim)} = bt.claim,
        ${sql.id(c.attempts)} = ${sql.ref(`t.${c.attempts}`)} + 1,
        ${sql.id(c.nextAt)} = now() + ${p.queueTimeoutMs} * interval '1 millisecond',
        ${sql.id(c.state)} = ${state} - 'batch'
      from batches bt
      where ${key} = any(bt.keys)
      returning 1
    ), jobs as (
      select ${sql.id(workerSchema, "add_jobs")}(array_agg(row(
        ${ENRICH_TASK}::text,
        json_build_object('pipeline', ${p.name}::text, 'claim', bt.claim, 'keys', bt.keys::text[], 'due', bt.due),
        null, null, 1, null, null, null
      )::${sql.id(workerSchema, "job_spec")})) as job
      from batches bt having count(*) > 0
    )
    select (select count(*) from claimed)::int as resumed, (select count(*) from jobs)::int as jobs
  `.execute(trx);
  return result.rows[0]?.resumed ?? 0;
}
