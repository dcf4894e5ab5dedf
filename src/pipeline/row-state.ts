import type { LlmAttempt, LlmUsage } from "../llm/llm-types.ts";

/**
 * The JSON kept in a row's `<prefix>state` column: what each stage produced, where each value
 * came from, every error, the tokens and cost spent, and the pipeline version. Documented in
 * the README's table contract; users query it with plain SQL.
 */
export interface RowState {
  /** Pipeline version (hash of stages, prompts, models, output schema) of the last run. */
  version?: string;
  stages?: Record<string, StageRecord>;
  columns?: Record<string, ColumnProvenance>;
  errors?: ErrorRecord[];
  usage?: UsageRecord;
  last_run?: { attempt: number; started_at: string; finished_at: string; outcome: string };
  reset?: { at: string; reason: string };
  /** Set while the row waits for a Batch API answer (`mode: batch`): the request's custom_id
   * (<schema>.llm_batch_requests), the stage that asked, and since when. */
  batch?: { request: string; stage: string; since: string };
}

export interface StageValue {
  value: unknown;
  confidence: number;
  /** Why the value is null or was rejected (e.g. a wrong type). */
  error?: string;
  sources?: string[];
  /** How the value was found: `llm`, or the structured data it was read from (`json-ld`…). */
  origin?: string;
  /** The evidence a reviewer reads instead of opening the page (see ValueEvidence). */
  quote?: string;
  fetched_at?: string;
  content_hash?: string;
  conflicts?: ValueConflict[];
}

/**
 * Why a value is believed: the short passage (at most QUOTE_MAX_CHARS) that states it, and the
 * page it was read from as it was then, its fetch time and the hash of its text
 * (src/stages/value-evidence.ts). Absent when the value could not be found in the text it came
 * from (a model's paraphrase), or when there was no page (a search snippet, a model's answer).
 */
export interface ValueEvidence {
  quote?: string;
  fetched_at?: string;
  content_hash?: string;
}

/** Another value sources stated for the same output, with their combined confidence
 * (src/pipeline/agreement.ts). */
export interface ValueConflict {
  value: unknown;
  confidence: number;
  sources: string[];
}

export interface StageRecord {
  /** `stale`: succeeded, but its answers were not sure enough; it runs again next attempt. */
  status: "ok" | "error" | "skipped" | "stale";
  version: string;
  /** The stage's recipe and what it read of the row (src/pipeline/stage-reuse.ts): a record
   * that succeeded with the same two is reused instead of running the stage again. */
  fingerprint?: string;
  input_hash?: string;
  attempt: number;
  started_at: string;
  finished_at: string;
  duration_ms: number;
  output?: Record<string, StageValue>;
  /** Stage-specific data kept for later stages (search results, pages...). */
  data?: unknown;
  backend?: string;
  model?: string;
  calls?: LlmAttempt[];
  usage?: UsageRecord;
  /** Field values cut to fit the prompt (pipelines.<p>.max_row_input_chars). */
  truncated?: PromptTruncation;
  reason?: string;
  error?: { class: string; message: string; permanent: boolean };
}

/** Per field: its length in characters, and how many of them the prompt kept. */
export type PromptTruncation = Record<string, { chars: number; kept: number }>;

export interface ColumnProvenance {
  value: unknown;
  /** Calibrated when the pipeline has `calibrate: true` and a mapping was learnt. */
  confidence: number;
  /** The confidence the stage reported, kept beside a calibrated `confidence`. */
  raw_confidence?: number;
  stage: string;
  version: string;
  at: string;
  backend?: string;
  model?: string;
  sources?: string[];
  /** `llm`, or the structured data the value was read from (`json-ld`, `microdata`…);
   * `human` once a reviewer approved, edited or rejected it (then `review` says how). */
  origin?: string;
  /** Set when the value is null: why nothing was written (`rejected` by a reviewer). */
  reason?: string;
  /** The escalation rung that found the value (src/stages/rungs/), and what that rung cost the
   * row. Absent: the pipeline's own stages found it. */
  rung?: string;
  rung_cost_usd?: number;
  /** Earlier values of the column, newest first (at most 5): kept when a ttl or drift re-run,
   * or a better answer, replaced them (src/pipeline/column-freshness.ts). */
  history?: ColumnHistoryEntry[];
  /** The passage stating the value, and the page's fetch time and text hash (ValueEvidence). */
  quote?: string;
  fetched_at?: string;
  content_hash?: string;
  /** Other values sources stated for this output; their disagreement lowered `confidence`. */
  conflicts?: ValueConflict[];
  /** A reviewer's decision (`<schema>.review`, migrations/000013): the value is locked. */
  review?: ColumnReview;
}

export interface ColumnReview {
  action: "approved" | "rejected" | "edited";
  at: string;
  by?: string;
  /** The value and confidence before the review (a rejected value is remembered here). */
  previous?: { value?: unknown; confidence?: number; origin?: string };
}

/** A value a column held before, with when and where it was found and when it was replaced. */
export interface ColumnHistoryEntry {
  value: unknown;
  confidence: number;
  at: string;
  stage: string;
  version: string;
  replaced_at: string;
  sources?: string[];
  origin?: string;
  model?: string;
}

export interface ErrorRecord {
  at: string;
  stage: string;
  attempt: number;
  class: string;
  message: string;
  permanent: boolean;
}

export interface UsageRecord {
  input_tokens: number;
  output_tokens: number;
  cost_usd: number;
  /** Per backend name. */
  by_backend?: Record<string, { input_tokens: number; output_tokens: number; cost_usd: number }>;
}

/** A row as a job reads it. */
export interface RowSnapshot {
  key: string;
  xmin: string;
  inputs: Record<string, unknown>;
  values: Record<string, unknown>;
  state: RowState;
  attempts: number;
}

/** Errors kept per row; older ones are dropped past this, with a count of how many. */
export const MAX_ERRORS_KEPT = 100;

export function addUsage(a: UsageRecord | undefined, b: UsageRecord | undefined): UsageRecord {
  const out: UsageRecord = {
    input_tokens: (a?.input_tokens ?? 0) + (b?.input_tokens ?? 0),
    output_tokens: (a?.output_tokens ?? 0) + (b?.output_tokens ?? 0),
    cost_usd: roundCost((a?.cost_usd ?? 0) + (b?.cost_usd ?? 0)),
  };
  // Added for every row of every chunk: plain loops over the two records, no key sets.
  const x = a?.by_backend;
  const y = b?.by_backend;
  if (x === undefined && y === undefined) return out;
  let byBackend: NonNullable<UsageRecord["by_backend"]> | undefined;
  for (const side of [x, y]) {
    if (side === undefined) continue;
    for (const name of Object.keys(side)) {
      if (byBackend?.[name] !== undefined) continue;
      const p = x?.[name];
      const q = y?.[name];
      byBackend ??= {};
      byBackend[name] = {
        input_tokens: (p?.input_tokens ?? 0) + (q?.input_tokens ?? 0),
        output_tokens: (p?.output_tokens ?? 0) + (q?.output_tokens ?? 0),
        cost_usd: roundCost((p?.cost_usd ?? 0) + (q?.cost_usd ?? 0)),
      };
    }
  }
  if (byBackend !== undefined) out.by_backend = byBackend;
  return out;
}

export const NO_USAGE: UsageRecord = Object.freeze({
  input_tokens: 0,
  output_tokens: 0,
  cost_usd: 0,
});

/**
 * Splits calls' usage among exactly the rows they asked about, so that the rows' usage adds up
 * to the calls' (and to what /metrics counts): tokens in whole numbers, the remainder to the
 * last row; cost evenly, the last row taking what rounding left over.
 */
export function splitUsage(
  attempts: readonly LlmAttempt[],
  keys: readonly string[],
): Map<string, UsageRecord> {
  const usage = new Map<string, UsageRecord>();
  if (keys.length === 0) return usage;
  const n = keys.length;
  const share = (total: number, index: number, whole: boolean): number => {
    const each = whole ? Math.floor(total / n) : total / n;
    return index < n - 1 ? each : total - each * (n - 1);
  };
  for (const a of attempts) {
    keys.forEach((key, i) => {
      const part = {
        input_tokens: share(a.inputTokens, i, true),
        output_tokens: share(a.outputTokens, i, true),
        cost_usd: share(a.costUsd, i, false),
      };
      usage.set(key, addUsage(usage.get(key), { ...part, by_backend: { [a.backend]: part } }));
    });
  }
  return usage;
}

export function sumUsage(usage: LlmUsage): UsageRecord {
  return {
    input_tokens: usage.inputTokens,
    output_tokens: usage.outputTokens,
    cost_usd: usage.costUsd,
  };
}

/**
 * Drops floating-point noise (0.1 + 0.2) but keeps what a row's share of a call costs: a
 * millionth of a dollar split over a batch is still counted, so rows add up to the calls.
 */
function roundCost(n: number): number {
  return Math.round(n * 1e12) / 1e12;
}

/** The record of a stage a row did not run (its `when`, a reviewer's decision, a ladder cap). */
export function skippedRecord(
  version: string,
  attempt: number,
  at: string,
  reason: string,
): StageRecord {
  return {
    status: "skipped",
    version,
    attempt,
    started_at: at,
    finished_at: at,
    duration_ms: 0,
    reason,
  };
}
