import type { Registry } from "prom-client";
import type { Runtime } from "../pipeline/runtime.ts";
import type { RuntimeEventMap } from "../pipeline/runtime-events.ts";
import { cataloguedCounter } from "./catalogued-metric.ts";

/**
 * Counters of the web research stages, fed by the runtime's search and crawl events. Returns the
 * function that unsubscribes them.
 */
export function attachResearchEventMetrics(registry: Registry, runtime: Runtime): () => void {
  const searches = cataloguedCounter(registry, "gleaner_search_requests_total");
  const pages = cataloguedCounter(registry, "gleaner_crawl_pages_total");
  const bytes = cataloguedCounter(registry, "gleaner_crawl_bytes_total");
  const refusals = cataloguedCounter(registry, "gleaner_crawl_refusals_total");
  // Series that alerts and panels take rates of start at 0 (see runtime-event-metrics.ts).
  for (const reason of ["robots", "ssrf"]) refusals.inc({ reason }, 0);
  for (const provider of runtime.config.search.providers)
    for (const outcome of ["hit", "call", "shared", "error"])
      searches.inc({ provider: provider.name, outcome }, 0);

  const onSearch = (e: RuntimeEventMap["search:lookup"]) =>
    searches.inc({ provider: e.provider, outcome: e.outcome });
  const onPage = (e: RuntimeEventMap["crawl:page"]) => {
    pages.inc({ path: e.path, outcome: e.outcome });
    if (e.bytes > 0) bytes.inc({ path: e.path }, e.bytes);
  };
  const onRefused = (e: RuntimeEventMap["crawl:refused"]) => refusals.inc({ reason: e.reason });

  const { events } = runtime;
  events.on("search:lookup", onSearch);
  events.on("crawl:page", onPage);
  events.on("crawl:refused", onRefused);
  return () => {
    events.off("search:lookup", onSearch);
    events.off("crawl:page", onPage);
    events.off("crawl:refused", onRefused);
  };
}
