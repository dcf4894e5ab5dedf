import type { Registry } from "prom-client";
import type { Runtime } from "../pipeline/runtime.ts";
import { cataloguedGauge } from "./catalogued-metric.ts";
import { llmEndpoint } from "./endpoint-label.ts";

/**
 * Per endpoint: the calls allowed at once (the backend's max_concurrency, fixed for the life of
 * the process) and the calls in flight, read from the backend's own limiter at scrape time.
 * Both are per process: the limit holds in each process, so Prometheus should not sum them
 * across processes to get a limit.
 */
export function registerConcurrencyCollectors(registry: Registry, runtime: Runtime): void {
  const limit = cataloguedGauge(registry, "gleaner_concurrency_limit");
  for (const backend of runtime.config.backends)
    limit.set({ endpoint: llmEndpoint(backend.name) }, backend.max_concurrency);

  cataloguedGauge(registry, "gleaner_calls_in_flight", {
    collect() {
      for (const [name, backend] of runtime.backends)
        this.set({ endpoint: llmEndpoint(name) }, backend.inFlight());
    },
  });
}
