import { sql } from "kysely";
import { ALIVE_WITHIN_MS } from "../core/worker-liveness.ts";
import type { Db } from "../db/connect-database.ts";
import type { InstalledPipeline } from "../pipeline/installed-pipeline.ts";

export const ENRICH_TASK = "gleaner_enrich";

export interface EnrichPayload {
  pipeline: string;
  /** Fencing token: only the job holding the row's current claim may write it. */
  claim: string;
  keys: string[];
  /** When each row became due (epoch ms), in the order of `keys`: the start of its latency. */
  due?: number[];
}

/**
 * The sweep's one statement: find due rows, claim them and enqueue their jobs.
 *
 * Why it is safe with any number of sweepers at once:
 * - `for update skip locked` means two sweeps never claim the same row; a row another sweep is
 *   claiming right now is skipped, and once that sweep commits the row's next_at is in the future,
 *   so a later re-check (EvalPlanQual) drops it too.
 * - Claiming and `add_jobs` happen in the same statement, hence the same transaction: a row is
 *   `queued` if and only if a job carrying its claim exists. A crash between the two is impossible.
 * - Rows are grouped job_size to a job, by due time then key (a sort of at most `limit` rows),
 *   so rows that come due together are batched together again the next time (the LLM answer
 *   cache answers only the same prompt); each job gets a fresh random claim; a job whose claim
 *   was replaced (lease expired, user reset) finds no rows and does nothing.
 * - A tick with fewer rows than job_size per live worker process makes smaller jobs, one per
 *   process (but never under one batch_size): each process runs its share of the fleet-wide
 *   LLM limit (src/concurrency/process-share.ts), so rows due together in one big job would
 *   wait on one process's share while the others idle. The live processes are read from
 *   <schema>.workers (a plain read: no lock) with the one liveness window of
 *   src/core/worker-liveness.ts; with none alive (a sweep alone), jobs are job_size.
 * - The update joins each job's key array to the primary key (`= any(keys)`), one index probe per
 *   row: a join against the row list itself lets the planner hash the whole table.
 * - A due row whose attempts are already at `retry.max_attempts` is not claimed again: its last
 *   attempt was lost (its worker died, or the job could not write its result), and claiming it
 *   would make attempts exceed the limit, forever for a row whose write always fails. It
 *   becomes `exhausted`, with the reason in its errors. Rows settle as exhausted themselves
 *   when they fail their last attempt, so only lost attempts reach this.
 * - A due `done` row starts a new cycle (attempts back to 1), unless it is a low-confidence
 *   re-check (confidence below min_confidence with attempts left, as settling decided): it is
 *   due because a value expired (outputs.<c>.ttl) or an older pipeline version produced it
 *   (on_version_change), and the attempts it took last time are spent on nothing now. Without
 *   this a row refreshed max_attempts times would be exhausted as if its attempts were lost.
 * - "Due" is a single indexed predicate, next_at <= now(): pending rows (next_at = insert time),
 *   failed rows at their retry time, low-confidence rows at their re-check time, and queued or
 *   running rows whose lease ran out. Done and exhausted rows have next_at NULL.
 */
export async function claimDueRows(
  db: Db,
  schemas: { readonly schema: string; readonly workerSchema: string },
  p: InstalledPipeline,
  limit: number,
): Promise<{ claimed: number; jobs: number; spent: number }> {
  const t = sql.table(`${p.table.schema}.${p.table.name}`);
  const c = p.columns;
  const key = sql.ref(`t.${p.key}`);
  const attempts = sql.ref(`t.${c.attempts}`);
  const state = sql.ref(`t.${c.state}`);
  const newCycle = sql`(${sql.ref(`t.${c.status}`)} = 'done' and not (
      coalesce(${sql.ref(`t.${c.confidence}`)}, 0) < ${p.minConfidence}
      and ${attempts} < ${p.retry.maxAttempts}))`;
  const result = await sql<{ claimed: number; jobs: number; spent: number }>`
    with due as (
      select ${key} as k, ${sql.ref(`t.${c.nextAt}`)} as due_at,
        case when ${newCycle} then 0 else ${attempts} end as attempts
      from ${t} t
      where ${sql.ref(`t.${c.nextAt}`)} <= now()
      order by ${sql.ref(`t.${c.nextAt}`)}
      limit ${limit}
      for update skip locked
    ), spent as (
      update ${t} t set
        ${sql.id(c.status)} = 'exhausted',
        ${sql.id(c.claim)} = null,
        ${sql.id(c.nextAt)} = null,
        ${sql.id(c.state)} = jsonb_set(
          jsonb_set(coalesce(${state}, '{}'), '{errors}',
            coalesce(${state} -> 'errors', '[]') || jsonb_build_array(jsonb_build_object(
              'at', now(), 'stage', '', 'attempt', ${attempts}, 'class', 'attempt_lost',
              'message', 'attempt ' || ${attempts} || ' of ' || ${p.retry.maxAttempts}
                || ' did not finish (its worker was lost, or writing its result failed); no attempt is left',
              'permanent', true))),
          '{last_run}', jsonb_build_object('attempt', ${attempts}, 'outcome', 'exhausted',
            'finished_at', now()))
      where ${key} = any(array(select k from due where attempts >= ${p.retry.maxAttempts}))
      returning 1
    ), fleet as (
      select greatest(1, count(*)) as processes from ${sql.table(`${schemas.schema}.workers`)}
      where heartbeat_at > now() - ${ALIVE_WITHIN_MS}::int * interval '1 millisecond'
    ), job_rows as (
      select greatest(
        least(${p.jobSize}::int, ceil(count(*)::numeric / (select processes from fleet))),
        least(${p.batchSize}::int, ${p.jobSize}::int))::int as n
      from due where due.attempts < ${p.retry.maxAttempts}
    ), numbered as (
      select k, due_at, (row_number() over (order by due_at, k) - 1) / (select n from job_rows) as b
      from due where due.attempts < ${p.retry.maxAttempts}
    ), batches as (
      select b, gen_random_uuid() as claim, array_agg(k order by k) as keys,
        array_agg((extract(epoch from due_at) * 1000)::bigint order by k) as due
      from numbered group by b
    ), claimed as (
      update ${t} t set
        ${sql.id(c.status)} = 'queued',
        ${sql.id(c.claim)} = bt.claim,
        ${sql.id(c.attempts)} = case when ${newCycle} then 1 else ${attempts} + 1 end,
        ${sql.id(c.nextAt)} = now() + ${p.queueTimeoutMs} * interval '1 millisecond'
      from batches bt
      where ${key} = any(bt.keys)
      returning 1
    ), jobs as (
      select ${sql.id(schemas.workerSchema, "add_jobs")}(array_agg(row(
        ${ENRICH_TASK}::text,
        json_build_object('pipeline', ${p.name}::text, 'claim', bt.claim, 'keys', bt.keys::text[], 'due', bt.due),
        null, null, 1, null, null, null
      )::${sql.id(schemas.workerSchema, "job_spec")})) as job
      from batches bt having count(*) > 0
    )
    select (select count(*) from claimed)::int as claimed, (select count(*) from jobs)::int as jobs,
      (select count(*) from spent)::int as spent
  `.execute(db);
  return result.rows[0] ?? { claimed: 0, jobs: 0, spent: 0 };
}
