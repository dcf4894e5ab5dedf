import {
  Counter,
  Gauge,
  Histogram,
  type CounterConfiguration,
  type GaugeConfiguration,
  type HistogramConfiguration,
  type Registry,
} from "prom-client";
import { METRICS, type MetricName } from "./metric-catalogue.ts";

/**
 * Builders that take a metric's help text, labels and type from the catalogue, so /metrics can
 * only ever export what the catalogue says: a name missing from it, or used with the wrong type
 * or a label it does not list, fails the type check.
 */
type Spec = (typeof METRICS)[number];
type NameOf<T extends Spec["type"]> = Extract<Spec, { type: T }>["name"];
export type LabelOf<N extends MetricName> = Extract<Spec, { name: N }>["labels"][number];

type Fixed = "name" | "help" | "labelNames" | "registers";

function spec<N extends MetricName>(name: N) {
  const found = METRICS.find((m) => m.name === name);
  // Unreachable while N is a MetricName; kept so a cast elsewhere cannot slip past.
  if (!found) throw new Error(`metric ${name} is not in src/metrics/metric-catalogue.ts`);
  return {
    name,
    help: found.help,
    labelNames: found.labels as readonly LabelOf<N>[],
  };
}

export function cataloguedGauge<N extends NameOf<"gauge">>(
  registry: Registry,
  name: N,
  options: Omit<GaugeConfiguration<LabelOf<N>>, Fixed> = {},
): Gauge<LabelOf<N>> {
  return new Gauge<LabelOf<N>>({ ...spec(name), registers: [registry], ...options });
}

export function cataloguedCounter<N extends NameOf<"counter">>(
  registry: Registry,
  name: N,
  options: Omit<CounterConfiguration<LabelOf<N>>, Fixed> = {},
): Counter<LabelOf<N>> {
  return new Counter<LabelOf<N>>({ ...spec(name), registers: [registry], ...options });
}

export function cataloguedHistogram<N extends NameOf<"histogram">>(
  registry: Registry,
  name: N,
  options: Omit<HistogramConfiguration<LabelOf<N>>, Fixed> & { buckets: number[] },
): Histogram<LabelOf<N>> {
  return new Histogram<LabelOf<N>>({ ...spec(name), registers: [registry], ...options });
}
