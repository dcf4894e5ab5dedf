import { sameOutputValue, type OutputType } from "../core/output-types.ts";
import type { ValueConflict } from "./row-state.ts";

/**
 * When several sources state a value for one output, their agreement raises its confidence and
 * their disagreement lowers it. "The same value" is the output type's own equality
 * (`sameOutputValue`: numbers within a tolerance, text case- and space-insensitive…).
 *
 * The formula, per group of readings that state the same value (a source counted once, at the
 * best confidence it was read with):
 *
 *   support(g) = 1 − (1 − c₁) · Π_{i≥2} (1 − cᵢ / 2)      c₁ ≥ c₂ ≥ … the group's confidences
 *
 * a noisy-OR in which every source after the most confident one counts half, since sites copy
 * each other and are rarely independent: two pages at 0.8 give 0.88, two at 0.6 give 0.72. The
 * group with the highest support wins (a tie goes to the earlier reading). Its confidence is
 *
 *   confidence = min(0.99, support(winner)) · (1 − support(rest) / 2)
 *
 * where `rest` is every reading that states another value, taken as one group: no rival leaves
 * the support as is, an equally sure rival about halves it (0.9 against 0.9 gives 0.495), and
 * agreement alone never claims more than 0.99. The other values are kept as `conflicts`.
 */

/** One source's reading of the value: where it was read and how sure the reader was. */
export interface Reading {
  value: unknown;
  confidence: number;
  sources?: string[];
}

export interface Agreement<R extends Reading> {
  /** The most confident reading of the winning value, to take the rest of its provenance from. */
  best: R;
  value: unknown;
  confidence: number;
  /** Every source that stated the winning value, the best reading's first. */
  sources: string[];
  /** The other values, most supported first; empty when every source agreed. */
  conflicts: ValueConflict[];
}

/** Agreement never raises a confidence above this. */
export const AGREEMENT_CEILING = 0.99;

/**
 * Combines the readings of one output (null values are not readings: a page that does not state
 * a value does not contradict one that does). Undefined when there are none.
 */
export function agree<R extends Reading>(
  type: OutputType,
  readings: readonly R[],
): Agreement<R> | undefined {
  const groups: R[][] = [];
  for (const reading of readings) {
    if (reading.value === null || reading.value === undefined) continue;
    const group = groups.find((g) => sameOutputValue(type, (g[0] as R).value, reading.value));
    if (group) group.push(reading);
    else groups.push([reading]);
  }
  if (groups.length === 0) return undefined;
  const supports = groups.map(support);
  let win = 0;
  supports.forEach((s, i) => {
    if (s > (supports[win] as number)) win = i;
  });
  const winner = groups[win] as R[];
  const rest = groups.filter((_, i) => i !== win);
  const against = support(rest.flat());
  const best = winner.reduce((a, b) => (b.confidence > a.confidence ? b : a));
  const confidence = Math.min(AGREEMENT_CEILING, supports[win] as number) * (1 - against / 2);
  return {
    best,
    value: best.value,
    // A lone reading keeps its confidence exactly; combined ones are rounded like the rest.
    confidence: winner.length === 1 && rest.length === 0 ? best.confidence : round(confidence),
    sources: sourcesOf([best, ...winner.filter((r) => r !== best)]),
    conflicts: rest
      .map((g) => ({
        value: g.reduce((a, b) => (b.confidence > a.confidence ? b : a)).value,
        confidence: round(support(g)),
        sources: sourcesOf(g),
      }))
      .sort((a, b) => b.confidence - a.confidence),
  };
}

/** The noisy-OR above over a group's sources, each counted once at its best confidence. */
function support(group: readonly Reading[]): number {
  const bySource = new Map<string, number>();
  group.forEach((reading, i) => {
    // A reading without sources (a model's own knowledge) is a source of its own.
    const key = reading.sources?.length ? [...reading.sources].sort().join(" ") : `#${i}`;
    bySource.set(key, Math.max(bySource.get(key) ?? 0, clamp(reading.confidence)));
  });
  const sorted = [...bySource.values()].sort((a, b) => b - a);
  if (sorted.length === 0) return 0;
  const [first, ...others] = sorted as [number, ...number[]];
  return 1 - (1 - first) * others.reduce((p, c) => p * (1 - c / 2), 1);
}

function sourcesOf(readings: readonly Reading[]): string[] {
  return [...new Set(readings.flatMap((r) => r.sources ?? []))];
}

function clamp(n: number): number {
  return Number.isFinite(n) ? Math.min(1, Math.max(0, n)) : 0;
}

function round(n: number): number {
  return Math.round(n * 1000) / 1000;
}
