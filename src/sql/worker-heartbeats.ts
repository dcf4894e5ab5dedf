import { sql } from "kysely";
import type { Db } from "../db/connect-database.ts";

export interface WorkerHeartbeat {
  id: string;
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
  const result = await sql<{ id: string; age: number }>`
    select id, greatest(0, extract(epoch from now() - heartbeat_at))::float8 as age
    from ${sql.table(`${schema}.workers`)}
    order by id
  `.execute(db);
  return result.rows.map((r) => ({ id: r.id, ageSeconds: Number(r.age) }));
}
