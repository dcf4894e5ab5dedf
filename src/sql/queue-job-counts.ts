import { sql } from "kysely";
import type { Db } from "../db/connect-database.ts";

export interface QueueJobCounts {
  /** Runnable now: run_at reached, not locked, attempts left. */
  ready: number;
  /** Waiting for run_at (a retry's backoff, or a job added for later). */
  scheduled: number;
  /** Taken by a worker, running now (or held by a worker that died, until the lock expires). */
  locked: number;
  /** No attempts left: kept by graphile-worker until someone deletes or retries it. */
  failed: number;
}

/**
 * graphile-worker's jobs by state, in one pass over its public `jobs` view.
 *
 * Cost: this does scan the jobs table, which is fine because the table is not a pipeline table
 * and stays small: graphile-worker deletes a job when it completes, so what is left is the queue
 * itself (at most the due rows over job_size, bounded by each sweep's sweep_limit) plus the jobs
 * that failed for good. Reading it takes no locks.
 */
export async function readQueueJobCounts(db: Db, workerSchema: string): Promise<QueueJobCounts> {
  const result = await sql<Record<keyof QueueJobCounts, string>>`
    select
      count(*) filter (where locked_at is null and attempts < max_attempts and run_at <= now()) as ready,
      count(*) filter (where locked_at is null and attempts < max_attempts and run_at > now()) as scheduled,
      count(*) filter (where locked_at is not null) as locked,
      count(*) filter (where locked_at is null and attempts >= max_attempts) as failed
    from ${sql.table(`${workerSchema}.jobs`)}
  `.execute(db);
  const row = result.rows[0];
  return {
    ready: Number(row?.ready ?? 0),
    scheduled: Number(row?.scheduled ?? 0),
    locked: Number(row?.locked ?? 0),
    failed: Number(row?.failed ?? 0),
  };
}
