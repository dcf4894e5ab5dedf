import type { ColumnRules, PipelineConfig } from "../config/config-types.ts";
import { stateColumns } from "../db/state-columns.ts";
import {
  fitCalibration,
  interpolate,
  type Calibration,
  type CalibrationSample,
} from "../pipeline/confidence-calibration.ts";
import type { ColumnProvenance, RowState, StageRecord } from "../pipeline/row-state.ts";
import type { StoredCalibration } from "../sql/calibrations.ts";
import {
  confidenceBuckets,
  expectedCalibrationError,
  type ConfidenceBucket,
} from "./calibration-table.ts";
import { isKnown, sameValue } from "./compare-values.ts";
import type { GoldenSet } from "./golden-set.ts";
import type { ShadowRun } from "./run-shadow.ts";

/** Fewest judged cells a (backend, column) pair needs for a mapping to be learnt. */
export const MIN_CALIBRATION_SAMPLES = 10;

export interface ColumnScore {
  column: string;
  rows: number;
  /** Cells Gleaner filled. */
  filled: number;
  coverage: number;
  /** Cells with a known value in the golden set. */
  known: number;
  /** Filled cells with a known value, and those right. */
  judged: number;
  correct: number;
  /** correct / judged; null when nothing was judged. */
  precision: number | null;
  /** correct / known; null when nothing is known. */
  recall: number | null;
  /** Expected calibration error of the judged cells' raw confidences. */
  ece: number | null;
}

export interface EvalReport {
  pipeline: string;
  config: string | undefined;
  golden: string;
  rows: number;
  statuses: Record<string, number>;
  columns: ColumnScore[];
  /** Over every scored column: cells pooled (micro average). */
  overall: Omit<ColumnScore, "column" | "ece">;
  calibration: {
    /** Accuracy by raw confidence, every judged cell. */
    buckets: ConfidenceBucket[];
    ece_before: number | null;
    /** With the mapping: the one stored before this eval (out of sample) when there was one,
     * else the one learnt now (in sample). */
    ece_after: number | null;
    after_basis: "stored" | "learnt (in sample)" | "none";
    buckets_after: ConfidenceBucket[];
    /** Mappings learnt from this eval, per backend (or structured-data origin) and column. */
    learnt: StoredCalibration[];
  };
  cost: {
    /** Paid in this eval (cost ledger). */
    paid_usd: number;
    /** Answers served by the LLM answer cache, and what their calls cost when first made. */
    cached_calls: number;
    saved_usd: number;
    /** (paid + saved) per row and per correct cell: what the recipe costs without the cache. */
    per_row_usd: number;
    per_correct_cell_usd: number | null;
  };
  latency: {
    /** Per row: the stages' working time (without queueing), median and 95th percentile. */
    p50_ms: number;
    p95_ms: number;
    /** The whole eval run, from the first row queued to the last settled. */
    wall_ms: number;
    timed_out: boolean;
  };
}

/**
 * Scores a shadow run against the golden set: per column coverage, precision and recall (by the
 * comparison rules of `rules`), calibration (raw confidence against being right, and with the
 * mapping), cost and latency.
 */
export function scoreEval(options: {
  pipeline: PipelineConfig;
  configFile: string | undefined;
  rules: Readonly<Record<string, ColumnRules>>;
  golden: GoldenSet;
  run: ShadowRun;
  /** The mapping stored before this eval, if the pipeline had one. */
  stored: Calibration | undefined;
}): EvalReport {
  const { pipeline, golden, run, rules } = options;
  const cols = stateColumns(run.shadow);
  const byKey = new Map(run.rows.map((r) => [r.key, r.row]));
  const statuses: Record<string, number> = {};
  const samples: (CalibrationSample & { backend: string; column: string })[] = [];
  const columns: ColumnScore[] = [];
  for (const output of pipeline.outputs) {
    const scored = golden.columns.includes(output.name);
    let filled = 0;
    let known = 0;
    let judged = 0;
    let correct = 0;
    const own: CalibrationSample[] = [];
    for (const g of golden.rows) {
      const row = byKey.get(g.key) ?? {};
      const value = row[output.name];
      const has = value !== null && value !== undefined;
      if (has) filled++;
      if (!scored || !isKnown(g.known[output.name])) continue;
      known++;
      if (!has) continue;
      judged++;
      const right = sameValue(output.type, rules[output.name], value, g.known[output.name]);
      if (right) correct++;
      const provenance = (row[cols.state] as RowState | null)?.columns?.[output.name];
      const sample = { confidence: rawConfidence(provenance), correct: right };
      own.push(sample);
      samples.push({ ...sample, backend: sourceOf(provenance), column: output.name });
    }
    columns.push({
      column: output.name,
      rows: golden.rows.length,
      filled,
      coverage: ratio(filled, golden.rows.length) ?? 0,
      known,
      judged,
      correct,
      precision: ratio(correct, judged),
      recall: ratio(correct, known),
      ece: expectedCalibrationError(own),
    });
  }
  for (const g of golden.rows) {
    const status = (byKey.get(g.key)?.[cols.status] as string | undefined) ?? "missing";
    statuses[status] = (statuses[status] ?? 0) + 1;
  }
  const sum = (f: (c: ColumnScore) => number) =>
    columns.filter((c) => golden.columns.includes(c.column)).reduce((t, c) => t + f(c), 0);
  const totals = {
    rows: golden.rows.length,
    filled: sum((c) => c.filled),
    known: sum((c) => c.known),
    judged: sum((c) => c.judged),
    correct: sum((c) => c.correct),
  };
  const cells = golden.rows.length * golden.columns.length;

  const learnt = learnMappings(samples);
  const learntMap = new Map(learnt.map((m) => [`${m.backend}\u0000${m.column}`, m.points]));
  const afterBasis = options.stored ? "stored" : learnt.length > 0 ? "learnt (in sample)" : "none";
  const after = samples.map((s) => {
    const mapped =
      afterBasis === "stored"
        ? options.stored?.apply(s.backend, s.column, s.confidence)
        : mapWith(learntMap.get(`${s.backend}\u0000${s.column}`), s.confidence);
    return { confidence: mapped ?? s.confidence, correct: s.correct };
  });

  const money = cacheSavings(run);
  const listPrice = run.paidUsd + money.saved;
  const durations = golden.rows
    .map((g) => rowWorkMs(byKey.get(g.key)?.[cols.state] as RowState | null))
    .sort((a, b) => a - b);
  return {
    pipeline: pipeline.name,
    config: options.configFile,
    golden: golden.source,
    rows: golden.rows.length,
    statuses,
    columns,
    overall: {
      ...totals,
      coverage: ratio(totals.filled, cells) ?? 0,
      precision: ratio(totals.correct, totals.judged),
      recall: ratio(totals.correct, totals.known),
    },
    calibration: {
      buckets: confidenceBuckets(samples),
      ece_before: expectedCalibrationError(samples),
      ece_after: afterBasis === "none" ? null : expectedCalibrationError(after),
      after_basis: afterBasis,
      buckets_after: afterBasis === "none" ? [] : confidenceBuckets(after),
      learnt,
    },
    cost: {
      paid_usd: round(run.paidUsd, 8),
      cached_calls: money.calls,
      saved_usd: round(money.saved, 8),
      per_row_usd: round(listPrice / Math.max(1, golden.rows.length), 8),
      per_correct_cell_usd: totals.correct === 0 ? null : round(listPrice / totals.correct, 8),
    },
    latency: {
      p50_ms: percentile(durations, 0.5),
      p95_ms: percentile(durations, 0.95),
      wall_ms: run.wallMs,
      timed_out: run.timedOut,
    },
  };
}

/** One mapping per (backend, column) pair with enough judged cells. */
function learnMappings(
  samples: readonly (CalibrationSample & { backend: string; column: string })[],
): StoredCalibration[] {
  const groups = new Map<string, typeof samples>();
  for (const s of samples) {
    const id = `${s.backend}\u0000${s.column}`;
    groups.set(id, [...(groups.get(id) ?? []), s]);
  }
  const out: StoredCalibration[] = [];
  for (const group of groups.values()) {
    const first = group[0];
    if (!first || group.length < MIN_CALIBRATION_SAMPLES) continue;
    const points = fitCalibration(group);
    out.push({
      backend: first.backend,
      column: first.column,
      points,
      samples: group.length,
      ece_before: expectedCalibrationError(group) ?? 0,
      ece_after:
        expectedCalibrationError(
          group.map((s) => ({ confidence: interpolate(points, s.confidence), correct: s.correct })),
        ) ?? 0,
    });
  }
  return out.sort((a, b) => (a.column + a.backend).localeCompare(b.column + b.backend));
}

function mapWith(points: StoredCalibration["points"] | undefined, raw: number): number | undefined {
  return points ? interpolate(points, raw) : undefined;
}

/** The confidence the stage reported: `raw_confidence` when one was calibrated. */
function rawConfidence(p: ColumnProvenance | undefined): number {
  return p?.raw_confidence ?? p?.confidence ?? 0;
}

/** The backend that answered, or the structured data the value was read from. */
function sourceOf(p: ColumnProvenance | undefined): string {
  return p?.backend ?? p?.origin ?? "unknown";
}

/**
 * Calls answered by the LLM answer cache, each counted once (every row of a chunk keeps the
 * chunk's calls), with what they cost when first made.
 */
function cacheSavings(run: ShadowRun): { calls: number; saved: number } {
  const cols = stateColumns(run.shadow);
  const seen = new Set<string>();
  let saved = 0;
  for (const r of run.rows) {
    const stages = (r.row[cols.state] as RowState | null)?.stages ?? {};
    for (const [name, record] of Object.entries<StageRecord>(stages)) {
      for (const call of record.calls ?? []) {
        if (call.outcome !== "cached") continue;
        const id = `${name}|${call.backend}|${call.startedAt}|${call.durationMs}`;
        if (seen.has(id)) continue;
        seen.add(id);
        saved += call.savedCostUsd ?? 0;
      }
    }
  }
  return { calls: seen.size, saved };
}

/** The row's working time: its stages' durations (chunk time; stage reuse costs 0). */
function rowWorkMs(state: RowState | null | undefined): number {
  return Object.values(state?.stages ?? {}).reduce((t, s) => t + (s.duration_ms ?? 0), 0);
}

function percentile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
}

function ratio(a: number, b: number): number | null {
  return b === 0 ? null : round(a / b, 4);
}

function round(n: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}
