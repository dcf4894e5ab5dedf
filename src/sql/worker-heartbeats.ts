import { sql } from "kysely";
import type { Db } from "../db/connect-database.ts";

export interface WorkerHeartbeat {
  id: string;
  host: string;
  pid: number;
  /** Gleaner's version in that process ('' when written by a version before migration 000017). */
  version: string;
  /** graphile-worker jobs it ran at its last heartbeat. */
  jobsInFlight: number;
  startedAt: Date;
  ageSeconds: number;
}

/**
 * Every registered worker process and the age of its last heartbeat, by the database's clock
 * (the same clock that wrote the heartbeat, so skew between hosts does not matter).
 *
 * Cost: a scan of gleaner.workers, one row per worker process; a worker deletes its own row when
 * it stops, so only live workers and ones that died without stopping are there.
 */
export async function readWorkerHeartbeats(db: Db, schema: string): Promise<WorkerHeartbeat[]> {
  const result = await sql<{
    id: string;
    host: string;
    pid: number;
    version: string;
    jobs_in_flight: number;
    started_at: Date;
    age: number;
  }>`
    select id, host, pid, version, jobs_in_flight, started_at,
      greatest(0, extract(epoch from now() - heartbeat_at))::float8 as age
    from ${sql.table(`${schema}.workers`)}
    order by host, pid, id
  `.execute(db);
  return result.rows.map((r) => ({
    id: r.id,
    host: r.host,
    pid: r.pid,
    version: r.version,
    jobsInFlight: r.jobs_in_flight,
    startedAt: new Date(r.started_at),
    ageSeconds: Number(r.age),
  }));
}
