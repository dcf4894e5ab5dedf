import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import type { Db } from "../db/connect-database.ts";

/** How often a worker process says it is alive; /metrics counts workers seen within 3 beats. */
export const HEARTBEAT_INTERVAL_MS = 10_000;

/**
 * Registers this worker process in gleaner.workers and keeps its heartbeat fresh, so a worker
 * that vanished is visible (and alertable) even though it could say nothing on its way out.
 */
export async function startWorkerHeartbeat(
  db: Db,
  schema: string,
  log: (message: string) => void,
): Promise<{ id: string; stop: () => Promise<void> }> {
  const id = `${hostname()}:${process.pid}:${randomBytes(3).toString("hex")}`;
  const table = db.withSchema(schema);
  // Workers that died without a word leave their row; an hour of silence is long enough to say
  // they are gone, and keeps dead workers from lingering in /metrics.
  await table
    .deleteFrom("workers")
    .where("heartbeat_at", "<", new Date(Date.now() - 3_600_000))
    .execute();
  await table.insertInto("workers").values({ id, host: hostname(), pid: process.pid }).execute();
  const timer = setInterval(() => {
    table
      .updateTable("workers")
      .set({ heartbeat_at: new Date() })
      .where("id", "=", id)
      .execute()
      .catch((error: Error) => log(`worker heartbeat failed: ${error.message}`));
  }, HEARTBEAT_INTERVAL_MS);
  timer.unref();
  return {
    id,
    stop: async () => {
      clearInterval(timer);
      await table.deleteFrom("workers").where("id", "=", id).execute();
    },
  };
}
