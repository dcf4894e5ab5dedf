import type { StageConfig } from "../config/config-types.ts";
import type { LlmAttempt } from "../llm/llm-types.ts";
import type { PromptTruncation, StageValue, UsageRecord } from "../pipeline/row-state.ts";

/**
 * The seam every stage kind plugs into. The stage machine hands a runner up to
 * `config.batchSize` rows at a time and persists whatever it returns in each row's state
 * before the next stage starts. Search, crawl and extract stages implement the same interface:
 * what they find for a row goes in `data`, which later stages read from `StageInputRow.data`.
 */
export interface StageRunner {
  readonly config: StageConfig;
  run(rows: readonly StageInputRow[], context: StageContext): Promise<StageChunkResult>;
}

export interface StageInputRow {
  key: string;
  /** Inputs, the key, and outputs filled so far (by earlier stages or earlier runs). */
  fields: Record<string, unknown>;
  /** `data` of earlier stages of this row, by stage name. */
  data: Record<string, unknown>;
  /**
   * The outputs this row still needs (an escalation rung, src/stages/rungs/): an extract stage
   * answers only these and leaves the others out. Unset: all of the stage's outputs.
   */
  wants?: readonly string[];
  /** How sure the answer filling each output is (0 NULL, 1 written by a user), for `when`. */
  confidence?: Record<string, number>;
}

export interface StageContext {
  signal: AbortSignal;
  pipeline: string;
  log: (message: string) => void;
}

export interface StageFailure {
  errorClass: string;
  message: string;
  permanent: boolean;
  retryAfterMs?: number;
  /**
   * The call was handed to the Batch API (a `mode: batch` backend): the row waits for this
   * request (custom_id) instead of failing, see src/pipeline/settle-row.ts.
   */
  waitingFor?: string;
}

export type StageRowResult =
  | { ok: true; values: Record<string, StageValue>; data?: unknown }
  | { ok: false; failure: StageFailure };

export interface StageChunkResult {
  rows: Map<string, StageRowResult>;
  /** Every external call made for this chunk, successful or not. */
  calls: LlmAttempt[];
  /**
   * What the calls cost, per row key: each call's usage divided among exactly the rows it asked
   * about (src/pipeline/row-state.ts `splitUsage`). A row absent spent nothing.
   */
  usage: ReadonlyMap<string, UsageRecord>;
  /** Rows whose field values were cut to fit the prompt, per row key. */
  truncated?: ReadonlyMap<string, PromptTruncation>;
  backend?: string;
  model?: string;
}
