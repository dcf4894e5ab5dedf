import { EvalUsageError } from "./eval-usage-error.ts";
import type { EvalReport } from "./score-eval.ts";

const FIGURES = ["precision", "recall", "coverage"] as const;
type Figure = (typeof FIGURES)[number];

export interface Threshold {
  /** undefined: the figure over every scored column; else that column's. */
  column: string | undefined;
  figure: Figure;
  min: number;
}

/**
 * `--fail-below precision=0.9,recall=0.8,city.coverage=0.95`: the overall figure, or one
 * column's (`<column>.<figure>`), that the eval must reach.
 */
export function parseFailBelow(text: string): Threshold[] {
  return text.split(",").map((part) => {
    const match = /^\s*(?:([a-z_][a-z0-9_]*)\.)?([a-z]+)\s*=\s*([0-9.]+)\s*$/.exec(part);
    const figure = match?.[2] as Figure | undefined;
    const min = Number(match?.[3]);
    if (!match || !figure || !FIGURES.includes(figure) || !(min >= 0 && min <= 1))
      throw new EvalUsageError(
        `--fail-below: "${part}" is not <figure>=<0..1> or <column>.<figure>=<0..1> (figures: ${FIGURES.join(", ")})`,
      );
    return { column: match[1], figure, min };
  });
}

/** The thresholds the report misses, each said in a line; empty when it passes. */
export function missedThresholds(report: EvalReport, thresholds: readonly Threshold[]): string[] {
  const missed: string[] = [];
  for (const t of thresholds) {
    const scores =
      t.column === undefined ? report.overall : report.columns.find((c) => c.column === t.column);
    if (!scores)
      throw new EvalUsageError(
        `--fail-below: "${t.column}" is not an output of pipeline ${report.pipeline}`,
      );
    const value = scores[t.figure];
    const name = `${t.column ? `${t.column}.` : ""}${t.figure}`;
    // A figure that cannot be computed (no known values) cannot pass a gate.
    if (value === null || value < t.min)
      missed.push(`${name} ${value === null ? "n/a" : value.toFixed(3)} is below ${t.min}`);
  }
  return missed;
}
