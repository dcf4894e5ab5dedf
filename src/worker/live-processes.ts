import { ALIVE_WITHIN_MS } from "../core/worker-liveness.ts";
import type { Db } from "../db/connect-database.ts";
import { readWorkerHeartbeats } from "../sql/worker-heartbeats.ts";

/** One live worker process of the fleet, as `gleaner status --json` and GET /v1/processes show it. */
export interface LiveProcess {
  id: string;
  host: string;
  pid: number;
  version: string;
  jobs_in_flight: number;
  started_at: string;
  heartbeat_age_seconds: number;
}

/**
 * The worker processes alive now (a heartbeat within src/core/worker-liveness.ts's window), on
 * every host sharing this database: what an operator checks during a rollout or a scale-out.
 * Processes that died without unregistering are left out; /metrics still shows their age.
 */
export async function readLiveProcesses(db: Db, schema: string): Promise<LiveProcess[]> {
  const workers = await readWorkerHeartbeats(db, schema);
  return workers
    .filter((w) => w.ageSeconds * 1000 < ALIVE_WITHIN_MS)
    .map((w) => ({
      id: w.id,
      host: w.host,
      pid: w.pid,
      version: w.version,
      jobs_in_flight: w.jobsInFlight,
      started_at: w.startedAt.toISOString(),
      heartbeat_age_seconds: Math.round(w.ageSeconds * 10) / 10,
    }));
}
