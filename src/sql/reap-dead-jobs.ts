import { sql } from "kysely";
import type { Db } from "../db/connect-database.ts";
import type { InstalledPipeline } from "../pipeline/installed-pipeline.ts";
import { ENRICH_TASK } from "./claim-due-rows.ts";

/** What a dead job carried: enough to find its rows by primary key and claim. */
interface DeadJob {
  id: string;
  lockedBy: string | null;
  payload: { pipeline?: unknown; claim?: unknown; keys?: unknown };
}

export interface ReapResult {
  jobs: number;
  /** Rows given back: pending and due now. */
  rows: number;
}

/**
 * Gives back the rows of jobs no live process will finish, and deletes those jobs:
 * - jobs locked by a graphile-worker pool that no live Gleaner process lists in
 *   gleaner.workers.pools (its process was killed, or its runner was restarted after a database
 *   outage), locked for longer than `graceMs` — the grace covers a new process between locking
 *   its first job and registering its pool;
 * - jobs graphile-worker failed for good (attempts = max_attempts, unlocked): Gleaner's tasks
 *   do not throw, so these come only from graphile-worker's own shutdown paths.
 * Their rows become pending and due now, claim cleared: rows that were still `queued` (the job
 * was taken but never started them) get their attempt back; `running` rows keep it, as when a
 * lease runs out. Without this, a job killed between graphile-worker locking it and the task
 * marking its rows running left them `queued` until queue_timeout, and its job locked for hours.
 *
 * Why it is safe:
 * - Rows are touched only where they still carry the dead job's claim (and its keys, so each is
 *   one primary-key probe): rows that moved on (settled, reset, re-claimed) are not touched, and a
 *   process wrongly taken for dead (a long pause) finds its claim gone and writes nothing.
 * - Two reapers at once do the same idempotent work: the second finds the claims cleared and
 *   the jobs gone. The job is unlocked and deleted in the same transaction that gives its rows
 *   back, so no worker can take it in between (an unlocked job with attempts = max_attempts is
 *   never fetched anyway).
 * - The job's payload is read from graphile-worker's `_private_jobs` by id (its public `jobs`
 *   view has no payload); the selection itself uses the public view and functions.
 */
export async function reapDeadJobs(
  db: Db,
  options: {
    schema: string;
    workerSchema: string;
    graceMs: number;
    resolve: (pipeline: string) => Promise<InstalledPipeline | undefined>;
    limit?: number;
  },
): Promise<ReapResult> {
  const ws = options.workerSchema;
  return db.transaction().execute(async (trx) => {
    const found = await sql<DeadJob>`
      select j.id::text as id, j.locked_by as "lockedBy", p.payload
      from ${sql.id(ws, "jobs")} j
      join ${sql.id(ws, "_private_jobs")} p on p.id = j.id
      where j.task_identifier = ${ENRICH_TASK}
        and (
          (j.locked_by is not null
            and j.locked_at < now() - ${options.graceMs} * interval '1 millisecond'
            and not exists (
              select 1 from ${sql.id(options.schema, "workers")} w
              where w.heartbeat_at > now() - ${options.graceMs} * interval '1 millisecond'
                and j.locked_by = any(w.pools)))
          or (j.locked_by is null and j.attempts >= j.max_attempts)
        )
      order by j.id
      limit ${options.limit ?? 500}
    `.execute(trx);
    if (found.rows.length === 0) return { jobs: 0, rows: 0 };

    const byPipeline = new Map<string, { claims: string[]; keys: string[] }>();
    for (const job of found.rows) {
      const { pipeline, claim, keys } = job.payload ?? {};
      if (typeof pipeline !== "string" || typeof claim !== "string" || !Array.isArray(keys))
        continue;
      const entry = byPipeline.get(pipeline) ?? { claims: [], keys: [] };
      entry.claims.push(claim);
      for (const k of keys) entry.keys.push(String(k));
      byPipeline.set(pipeline, entry);
    }
    let rows = 0;
    for (const [name, { claims, keys }] of byPipeline) {
      const p = await options.resolve(name);
      if (!p) continue;
      const c = p.columns;
      const status = sql.ref(`t.${c.status}`);
      const result = await sql`
        update ${sql.table(`${p.table.schema}.${p.table.name}`)} t set
          ${sql.id(c.status)} = 'pending',
          ${sql.id(c.claim)} = null,
          ${sql.id(c.nextAt)} = now(),
          ${sql.id(c.attempts)} = case when ${status} = 'queued'
            then greatest(${sql.ref(`t.${c.attempts}`)} - 1, 0)
            else ${sql.ref(`t.${c.attempts}`)} end
        where ${sql.ref(`t.${p.key}`)} = any(${keys}::${sql.raw(p.keyType)}[])
          and ${sql.ref(`t.${c.claim}`)} = any(${claims}::uuid[])
          and ${status} in ('queued', 'running')
      `.execute(trx);
      rows += Number(result.numAffectedRows ?? 0);
    }
    const pools = [
      ...new Set(found.rows.map((j) => j.lockedBy).filter((x): x is string => x !== null)),
    ];
    if (pools.length > 0)
      await sql`select ${sql.id(ws, "force_unlock_workers")}(${pools}::text[])`.execute(trx);
    await sql`select 1 from ${sql.id(ws, "complete_jobs")}(${found.rows.map((j) => j.id)}::bigint[])`.execute(
      trx,
    );
    return { jobs: found.rows.length, rows };
  });
}
