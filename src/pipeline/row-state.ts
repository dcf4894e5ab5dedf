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
}

export interface StageValue {
  value: unknown;
  confidence: number;
  /** Why the value is null or was rejected (e.g. a wrong type). */
  error?: string;
  sources?: string[];
  /** How the value was found: `llm`, or the structured data it was read from (`json-ld`…). */
  origin?: string;
}

export interface StageRecord {
  /** `stale`: succeeded, but its answers were not sure enough; it runs again next attempt. */
  status: "ok" | "error" | "skipped" | "stale";
  version: string;
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
  reason?: string;
  error?: { class: string; message: string; permanent: boolean };
}

export interface ColumnProvenance {
  value: unknown;
  confidence: number;
  stage: string;
  version: string;
  at: string;
  backend?: string;
  model?: string;
  sources?: string[];
  /** `llm`, or the structured data the value was read from (`json-ld`, `microdata`…). */
  origin?: string;
  /** Set when the value is null: why nothing was written. */
  reason?: string;
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
    cost_usd: round6((a?.cost_usd ?? 0) + (b?.cost_usd ?? 0)),
  };
  const backends = new Set([
    ...Object.keys(a?.by_backend ?? {}),
    ...Object.keys(b?.by_backend ?? {}),
  ]);
  if (backends.size > 0) {
    out.by_backend = {};
    for (const name of backends) {
      const x = a?.by_backend?.[name];
      const y = b?.by_backend?.[name];
      out.by_backend[name] = {
        input_tokens: (x?.input_tokens ?? 0) + (y?.input_tokens ?? 0),
        output_tokens: (x?.output_tokens ?? 0) + (y?.output_tokens ?? 0),
        cost_usd: round6((x?.cost_usd ?? 0) + (y?.cost_usd ?? 0)),
      };
    }
  }
  return out;
}

/** A share of one call's usage: a batch call's tokens are split evenly across its rows. */
export function usageShare(attempts: readonly LlmAttempt[], rows: number): UsageRecord {
  let usage: UsageRecord = { input_tokens: 0, output_tokens: 0, cost_usd: 0 };
  for (const a of attempts) {
    usage = addUsage(usage, {
      input_tokens: a.inputTokens / rows,
      output_tokens: a.outputTokens / rows,
      cost_usd: a.costUsd / rows,
      by_backend: {
        [a.backend]: {
          input_tokens: a.inputTokens / rows,
          output_tokens: a.outputTokens / rows,
          cost_usd: a.costUsd / rows,
        },
      },
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

function round6(n: number): number {
  return Math.round(n * 1e6) / 1e6;
}
