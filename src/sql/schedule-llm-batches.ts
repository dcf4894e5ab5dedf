import { sql } from "kysely";
import type { Db } from "../db/connect-database.ts";

export const LLM_BATCHES_TASK = "gleaner_llm_batches";

/**
 * Makes sure one `gleaner_llm_batches` job is scheduled, at `runAt` at the latest.
 *
 * Why it is safe with any number of processes: the job has a fixed job_key, so graphile-worker
 * keeps a single job under it; `preserve_run_at` leaves an earlier run time as it is, so
 * processes starting one after the other never postpone the poll. graphile-worker's own retries
 * (with backoff) keep the chain going if a run fails to schedule the next one.
 */
export async function scheduleLlmBatches(db: Db, workerSchema: string, runAt: Date): Promise<void> {
  await sql`
    select ${sql.id(workerSchema, "add_job")}(${LLM_BATCHES_TASK}, '{}'::json,
      run_at := ${runAt.toISOString()}::timestamptz,
      job_key := ${LLM_BATCHES_TASK}, job_key_mode := 'preserve_run_at')
  `.execute(db);
}
