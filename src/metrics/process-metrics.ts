import { collectDefaultMetrics, type Registry } from "prom-client";
import { PROCESS_METRICS_PREFIX } from "./metric-catalogue.ts";

/**
 * prom-client's default process and Node.js metrics, prefixed gleaner_process_. Its three
 * `nodejs_active_*_total` gauges are dropped: a gauge named `_total` fails
 * `promtool check metrics`, and each is the sum of the labelled `nodejs_active_*` gauge it
 * comes with (sum(gleaner_process_nodejs_active_handles) gives the same figure).
 */
export function registerProcessMetrics(registry: Registry): void {
  collectDefaultMetrics({ register: registry, prefix: PROCESS_METRICS_PREFIX });
  for (const { name, type } of registry.getMetricsAsArray())
    if (String(type) === "gauge" && name.endsWith("_total")) registry.removeSingleMetric(name);
}
