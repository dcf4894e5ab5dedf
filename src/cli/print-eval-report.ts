import type { ConfidenceBucket } from "../eval/calibration-table.ts";
import type { EvalReport } from "../eval/score-eval.ts";
import { printTable, usd } from "./print-table.ts";

const pct = (n: number | null | undefined): string =>
  n === null || n === undefined ? "-" : `${(n * 100).toFixed(1)}%`;
const num = (n: number | null | undefined, digits = 3): string =>
  n === null || n === undefined ? "-" : n.toFixed(digits);

/** The report as tables on stdout: per column, calibration, cost and latency. */
export function printEvalReport(report: EvalReport, title: string): void {
  console.log(
    `${title}: pipeline ${report.pipeline}${report.config ? ` (${report.config})` : ""}, ${report.rows} rows of ${report.golden}`,
  );
  console.log(
    `rows: ${Object.entries(report.statuses)
      .map(([s, n]) => `${n} ${s}`)
      .join(", ")}`,
  );
  printTable(
    ["column", "filled", "coverage", "known", "correct", "precision", "recall", "ECE"],
    [
      ...report.columns.map((c) => [
        c.column,
        String(c.filled),
        pct(c.coverage),
        String(c.known),
        String(c.correct),
        pct(c.precision),
        pct(c.recall),
        num(c.ece),
      ]),
      [
        "all",
        String(report.overall.filled),
        pct(report.overall.coverage),
        String(report.overall.known),
        String(report.overall.correct),
        pct(report.overall.precision),
        pct(report.overall.recall),
        num(report.calibration.ece_before),
      ],
    ],
  );
  console.log("");
  const cal = report.calibration;
  const after = new Map(cal.buckets_after.map((b) => [b.from, b]));
  printTable(
    ["confidence", "cells", "mean", "accuracy", "after: cells", "mean", "accuracy"],
    cal.buckets
      .filter((b) => b.cells > 0 || (after.get(b.from)?.cells ?? 0) > 0)
      .map((b) => [...bucketCells(b, true), ...bucketCells(after.get(b.from), false)]),
  );
  console.log(
    `ECE before ${num(cal.ece_before)}, after ${num(cal.ece_after)} (mapping: ${cal.after_basis}); ` +
      `${cal.learnt.length} mapping(s) learnt: ${cal.learnt.map((m) => `${m.column}/${m.backend} (${m.samples})`).join(", ") || "none"}`,
  );
  const c = report.cost;
  console.log(
    `cost: ${usd(c.paid_usd)} paid, ${c.cached_calls} answers from the cache (${usd(c.saved_usd)} saved); ` +
      `${usd(c.per_row_usd)} per row, ${c.per_correct_cell_usd === null ? "-" : usd(c.per_correct_cell_usd)} per correct cell`,
  );
  const l = report.latency;
  console.log(
    `latency per row: p50 ${l.p50_ms} ms, p95 ${l.p95_ms} ms; eval run ${(l.wall_ms / 1000).toFixed(1)} s${l.timed_out ? " (timed out)" : ""}`,
  );
}

function bucketCells(b: ConfidenceBucket | undefined, label: boolean): string[] {
  const range = b ? `${b.from.toFixed(1)}-${b.to.toFixed(1)}` : "";
  const cells = [String(b?.cells ?? 0), num(b?.confidence, 2), pct(b?.accuracy)];
  return label ? [range, ...cells] : cells;
}

export interface ReportDifference {
  column: string;
  coverage: number | null;
  precision: number | null;
  recall: number | null;
}

/** Per column and overall: --against minus --config, in points of 0..1. */
export function reportDifferences(main: EvalReport, against: EvalReport): ReportDifference[] {
  const delta = (a: number | null, b: number | null) =>
    a === null || b === null ? null : Math.round((b - a) * 10_000) / 10_000;
  const rows = main.columns.map((c) => {
    const o = against.columns.find((x) => x.column === c.column);
    return {
      column: c.column,
      coverage: delta(c.coverage, o?.coverage ?? null),
      precision: delta(c.precision, o?.precision ?? null),
      recall: delta(c.recall, o?.recall ?? null),
    };
  });
  rows.push({
    column: "all",
    coverage: delta(main.overall.coverage, against.overall.coverage),
    precision: delta(main.overall.precision, against.overall.precision),
    recall: delta(main.overall.recall, against.overall.recall),
  });
  return rows;
}

export function printDifferences(main: EvalReport, against: EvalReport): void {
  const signed = (n: number | null) =>
    n === null ? "-" : `${n > 0 ? "+" : ""}${(n * 100).toFixed(1)} pt`;
  console.log(`differences (--against minus --config):`);
  printTable(
    ["column", "coverage", "precision", "recall"],
    reportDifferences(main, against).map((d) => [
      d.column,
      signed(d.coverage),
      signed(d.precision),
      signed(d.recall),
    ]),
  );
  console.log(
    `cost per row ${usd(main.cost.per_row_usd)} → ${usd(against.cost.per_row_usd)}; ` +
      `latency p50 ${main.latency.p50_ms} → ${against.latency.p50_ms} ms; ` +
      `ECE ${num(main.calibration.ece_before)} → ${num(against.calibration.ece_before)}`,
  );
}
