import type { Registry } from "prom-client";
import type { Db } from "../db/connect-database.ts";
import { readWorkerHeartbeats } from "../sql/worker-heartbeats.ts";
import { ALIVE_WITHIN_MS } from "../core/worker-liveness.ts";
import { cataloguedGauge } from "./catalogued-metric.ts";
import { perScrape } from "./per-scrape.ts";

/** A worker counts as alive while it is (src/core/worker-liveness.ts). */
const ALIVE_SECONDS = ALIVE_WITHIN_MS / 1000;

/**
 * Worker processes from gleaner.workers, where each one registers and beats at least every 10 s: a worker
 * that died without a word stays there with a growing age, which is what the "workers missing"
 * alert needs. Both gauges come from one read per scrape.
 */
export function registerWorkerCollectors(registry: Registry, db: Db, schema: string): void {
  const read = perScrape(() => readWorkerHeartbeats(db, schema));
  cataloguedGauge(registry, "gleaner_workers_alive", {
    async collect() {
      const workers = await read();
      this.set(workers.filter((w) => w.ageSeconds < ALIVE_SECONDS).length);
    },
  });
  cataloguedGauge(registry, "gleaner_worker_heartbeat_age_seconds", {
    async collect() {
      const workers = await read();
      this.reset();
      for (const w of workers) this.set({ worker: w.id }, w.ageSeconds);
    },
  });
}
