import type { RowStatus } from "../db/pipeline-ddl.ts";
import type { InstalledPipeline } from "./installed-pipeline.ts";
import { retryDelayMs } from "./retry-delay.ts";
import { BUDGET_EXHAUSTED } from "./row-budget.ts";
import { isCurrentRecord } from "./stage-reuse.ts";
import {
  MAX_ERRORS_KEPT,
  addUsage,
  type ColumnProvenance,
  type ErrorRecord,
  type RowSnapshot,
  type RowState,
  type StageRecord,
  type UsageRecord,
} from "./row-state.ts";
import type { StageFailure } from "../stages/stage-runner.ts";
import type { RowWrite } from "../sql/write-row-states.ts";

/** What one job run did to one row. */
export interface RowRun {
  startedAt: string;
  /** Errors and usage as the run found them: the run's own are added to these, once, however
   * many times the state is written during the run. */
  base: { errors: ErrorRecord[]; usage: UsageRecord | undefined };
  stages: Record<string, StageRecord>;
  errors: ErrorRecord[];
  usage: UsageRecord | undefined;
  failure?: { stage: string; failure: StageFailure };
}

export function startRun(row: RowSnapshot, startedAt: string): RowRun {
  return {
    startedAt,
    base: { errors: row.state.errors ?? [], usage: row.state.usage },
    stages: {},
    errors: [],
    usage: undefined,
  };
}

/** The state to persist mid-run: this run's stage records merged in, nothing else decided.
 * Idempotent: writing it again (a checkpoint, then the lease renewal) counts nothing twice. */
export function checkpointState(p: InstalledPipeline, row: RowSnapshot, run: RowRun): RowState {
  return {
    ...row.state,
    version: p.version,
    stages: { ...row.state.stages, ...run.stages },
    errors: keepErrors([...run.base.errors, ...run.errors]),
    usage: addUsage(run.base.usage, run.usage),
  };
}

/**
 * The state of a row handed back on shutdown: what the finished stages produced, and the
 * interruption as the row's last run — not as an error, since nothing failed.
 */
export function handBackState(p: InstalledPipeline, row: RowSnapshot, run: RowRun): RowState {
  return {
    ...checkpointState(p, row, run),
    last_run: {
      attempt: row.attempts,
      started_at: run.startedAt,
      finished_at: new Date().toISOString(),
      outcome: "handed_back",
    },
  };
}

/**
 * The final write of a row after a run: values merged keeping the best answer so far, the
 * row's confidence, its status and when it is due again. Pure, so a write that lost a race
 * (the row changed underneath) is simply recomputed from a fresh snapshot.
 */
export function settleRow(
  p: InstalledPipeline,
  row: RowSnapshot,
  run: RowRun,
  random: () => number = Math.random,
): RowWrite {
  const now = new Date().toISOString();
  const state = checkpointState(p, row, run);
  // Whatever batch the row waited for is behind it now (or it waits for a new one, below).
  delete state.batch;
  const stages = state.stages ?? {};
  const columns: Record<string, ColumnProvenance> = { ...state.columns };
  const values: Record<string, unknown> = { ...row.values };
  const counted = new Set<string>();

  // Candidate per output: the most confident value among stages that succeeded as configured
  // now (a record reused from an earlier run counts); later stages win ties. Skipped stages'
  // outputs do not count.
  for (const stage of p.stages) {
    const record = stages[stage.name];
    if (!record || record.status !== "ok" || !isCurrentRecord(p, stage.name, record)) continue;
    for (const name of stage.outputs) {
      counted.add(name);
      const candidate = record.output?.[name];
      if (!candidate) continue;
      const current = values[name];
      const provenance = columns[name];
      const userWritten = current !== null && current !== undefined && !provenance;
      if (userWritten || lockedByReview(provenance, current)) continue;
      if (candidate.value === null || candidate.value === undefined) {
        if (current === null || current === undefined) {
          columns[name] = {
            value: null,
            confidence: 0,
            stage: stage.name,
            version: p.version,
            at: record.finished_at,
            reason: candidate.error ?? "the stage found no value",
            ...(record.model ? { model: record.model } : {}),
          };
        }
        continue;
      }
      const better =
        current === null ||
        current === undefined ||
        candidate.confidence >= (provenance?.confidence ?? 0);
      if (!better) continue;
      const readFromPage = candidate.origin !== undefined && candidate.origin !== "llm";
      values[name] = candidate.value;
      columns[name] = {
        value: candidate.value,
        confidence: candidate.confidence,
        stage: stage.name,
        version: p.version,
        at: record.finished_at,
        // A value read from a page's structured data owes nothing to the stage's model.
        ...(record.backend && !readFromPage ? { backend: record.backend } : {}),
        ...(record.model && !readFromPage ? { model: record.model } : {}),
        ...(candidate.sources ? { sources: candidate.sources } : {}),
        ...(candidate.origin ? { origin: candidate.origin } : {}),
      };
    }
  }
  state.columns = columns;
  const attempt = row.attempts;

  if (run.failure?.failure.waitingFor !== undefined) return waitForBatch(row, run, state, now);
  if (run.failure) {
    const { failure } = run.failure;
    if (failure.errorClass === BUDGET_EXHAUSTED)
      return waitForBudget(row, run, state, values, now, failure);
    const exhausted = failure.permanent || attempt >= p.retry.maxAttempts;
    const status: RowStatus = exhausted ? "exhausted" : "failed";
    state.last_run = { attempt, started_at: run.startedAt, finished_at: now, outcome: status };
    return {
      key: row.key,
      xmin: row.xmin,
      state,
      status,
      nextInMs: exhausted ? null : retryDelayMs(p.retry, attempt, failure.retryAfterMs, random),
      values,
      confidence: null,
      enriched: false,
      attempts: attempt,
    };
  }

  // An output's confidence: 0 when NULL, 1 when a user wrote it (no provenance) or a reviewer
  // decided on it, else the confidence of the answer that filled it.
  const outputConfidence = (name: string): number => {
    const value = values[name];
    const provenance = columns[name];
    // A reviewer's decision is final, a rejection included: nothing left to be unsure of.
    if (lockedByReview(provenance, value)) return 1;
    if (value === null || value === undefined) return 0;
    if (!provenance || provenance.value === null) return 1;
    return provenance.confidence;
  };
  let confidence = 1;
  for (const name of counted) confidence = Math.min(confidence, outputConfidence(name));
  const low = confidence < p.minConfidence;
  const retryLow = low && attempt < p.retry.maxAttempts;
  if (retryLow) {
    // The next attempt must ask again from the first stage that left an output unsure; stages
    // before it keep their results, later ones may have used its answers and run again too.
    const first = p.stages.findIndex((s) =>
      s.outputs.some((o) => counted.has(o) && outputConfidence(o) < p.minConfidence),
    );
    if (first >= 0) {
      // Marked stale rather than dropped: what they read and answered stays inspectable until
      // the next attempt replaces it.
      const kept = { ...stages };
      for (const s of p.stages.slice(first)) {
        const record = kept[s.name];
        if (record?.status === "ok") kept[s.name] = { ...record, status: "stale" };
      }
      state.stages = kept;
    }
  }
  state.last_run = {
    attempt,
    started_at: run.startedAt,
    finished_at: now,
    outcome: low ? "done_low_confidence" : "done",
  };
  return {
    key: row.key,
    xmin: row.xmin,
    state,
    status: "done",
    nextInMs: retryLow ? p.lowConfidenceRetryAfterMs : null,
    values,
    confidence,
    enriched: true,
    attempts: attempt,
  };
}

/**
 * A row a budget window refused: failed, due exactly when the window resets (no jitter: money,
 * not load, is what it waits for), and the attempt not counted, since nothing was tried. Its
 * outputs stay as they were; nothing is written as NULL-and-done because the money ran out.
 */
function waitForBudget(
  row: RowSnapshot,
  run: RowRun,
  state: RowState,
  values: Record<string, unknown>,
  now: string,
  failure: StageFailure,
): RowWrite {
  state.last_run = {
    attempt: row.attempts,
    started_at: run.startedAt,
    finished_at: now,
    outcome: BUDGET_EXHAUSTED,
  };
  return {
    key: row.key,
    xmin: row.xmin,
    state,
    status: "failed",
    nextInMs: failure.retryAfterMs ?? 0,
    values,
    confidence: null,
    enriched: false,
    attempts: Math.max(row.attempts - 1, 0),
  };
}

/**
 * A row whose call went to the Batch API: `pending`, not due until the batch can no longer be
 * running (its window, 24 h and a margin, carried as retryAfterMs), so neither the sweep nor
 * the dead-worker reaper takes it; the batch poller makes it due again as soon as the answer
 * is in (src/sql/resume-batch-rows.ts). Waiting costs no attempt. `state.batch` says what it
 * waits for, and the resume matches on it, so a row reset meanwhile is left alone.
 */
function waitForBatch(row: RowSnapshot, run: RowRun, state: RowState, now: string): RowWrite {
  const { stage, failure } = run.failure as NonNullable<RowRun["failure"]>;
  state.batch = { request: failure.waitingFor as string, stage, since: now };
  state.last_run = {
    attempt: row.attempts,
    started_at: run.startedAt,
    finished_at: now,
    outcome: "waiting_for_batch",
  };
  return {
    key: row.key,
    xmin: row.xmin,
    state,
    status: "pending",
    nextInMs: failure.retryAfterMs ?? BATCH_WAIT_FALLBACK_MS,
    values: row.values,
    confidence: null,
    enriched: false,
    attempts: Math.max(0, row.attempts - 1),
  };
}

/** 24 h of Batch API completion window and 2 h of margin, when the backend gave no wait. */
const BATCH_WAIT_FALLBACK_MS = 26 * 3_600_000;

/**
 * True when a reviewer's decision holds the column (`origin: human`, written by the review
 * function of migrations/000013): an approved or edited value while it is still there, a
 * rejected one while the column is still NULL. A user who clears an approved value, or writes
 * into a rejected column, takes the decision back: the usual rules apply again.
 */
export function lockedByReview(
  provenance: ColumnProvenance | undefined,
  current: unknown,
): boolean {
  if (provenance?.origin !== "human") return false;
  const empty = current === null || current === undefined;
  return provenance.review?.action === "rejected" ? empty : !empty;
}

function keepErrors(errors: ErrorRecord[]): ErrorRecord[] {
  return errors.length > MAX_ERRORS_KEPT ? errors.slice(-MAX_ERRORS_KEPT) : errors;
}
