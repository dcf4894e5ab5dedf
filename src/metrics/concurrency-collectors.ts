import type { Registry } from "prom-client";
import type { Runtime } from "../pipeline/runtime.ts";
import { cataloguedCounter, cataloguedGauge } from "./catalogued-metric.ts";

/**
 * Per endpoint known to the runtime's adaptive concurrency registry (src/concurrency/), read
 * from its snapshot at scrape time: this process's share of the limit, its calls in flight, and
 * the overloads (429, 503) it saw. Summed by endpoint across processes, the shares give the
 * fleet-wide limit (less the rounding), and the in-flight calls the fleet's.
 */
export function registerConcurrencyCollectors(registry: Registry, runtime: Runtime): void {
  const snapshot = () => runtime.concurrency.snapshot();
  cataloguedGauge(registry, "gleaner_concurrency_limit", {
    collect() {
      for (const e of snapshot()) this.set({ endpoint: e.endpoint }, e.limit);
    },
  });
  cataloguedGauge(registry, "gleaner_calls_in_flight", {
    collect() {
      for (const e of snapshot()) this.set({ endpoint: e.endpoint }, e.inFlight);
    },
  });
  // The limiters count; the counter catches up with them at each scrape. Every endpoint gets its
  // series at 0 first, so alerts see the first throttle as an increase.
  const counted = new Map<string, number>();
  cataloguedCounter(registry, "gleaner_throttle_events_total", {
    collect() {
      for (const e of snapshot()) {
        const delta = e.throttleEvents - (counted.get(e.endpoint) ?? 0);
        this.inc({ endpoint: e.endpoint }, Math.max(0, delta));
        counted.set(e.endpoint, e.throttleEvents);
      }
    },
  });
}
