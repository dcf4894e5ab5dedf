import type { RowStatus } from "../db/pipeline-ddl.ts";
import type { InstalledPipeline } from "./installed-pipeline.ts";
import { retryDelayMs } from "./retry-delay.ts";
import { BUDGET_EXHAUSTED } from "./row-budget.ts";
import { isCurrentRecord } from "./stage-reuse.ts";
import { mergeCandidates, outputConfidence } from "./merge-candidates.ts";
import { msUntilFirstExpiry } from "./column-freshness.ts";
import { rungStageName } from "../config/escalation-schema.ts";
import {
  MAX_ERRORS_KEPT,
  addUsage,
  type ErrorRecord,
  type RowSnapshot,
  type RowState,
  type StageRecord,
  type UsageRecord,
} from "./row-state.ts";
import type { Calibration } from "./confidence-calibration.ts";
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
  /** The runtime's clock (freshness: which values expired, when the row is due again). */
  nowMs: number = Date.now(),
  /** `calibrate: true`: the pipeline's learnt confidence mappings (confidence-calibration.ts). */
  calibration?: Calibration,
): RowWrite {
  const now = new Date(nowMs).toISOString();
  const state = checkpointState(p, row, run);
  // Whatever batch the row waited for is behind it now (or it waits for a new one, below).
  delete state.batch;
  const stages = state.stages ?? {};
  const merged = mergeCandidates(p, row, stages, nowMs, calibration);
  const { values, columns, counted } = merged;
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

  let confidence = 1;
  for (const name of counted) confidence = Math.min(confidence, outputConfidence(merged, name));
  const low = confidence < p.minConfidence;
  const unsure = [...counted].filter((o) => outputConfidence(merged, o) < p.minConfidence);
  const ladder = p.escalation;
  let retryLow: boolean;
  if (ladder && unsure.every((o) => ladder.outputs.includes(o))) {
    // With an escalation ladder, a re-check asks nothing again on the same evidence: it keeps
    // every stage and climbs the rungs not climbed yet (one that failed is climbed again). With
    // every rung climbed, the row settles at its best and is not re-checked until a user or a
    // version change resets it.
    const climbed = ladder.rungs.every((rung) => {
      const record = stages[rungStageName(rung)];
      return (
        record !== undefined &&
        (record.status === "ok" || record.status === "skipped") &&
        isCurrentRecord(p, rungStageName(rung), record)
      );
    });
    retryLow = low && !climbed && attempt < p.retry.maxAttempts;
  } else {
    retryLow = low && attempt < p.retry.maxAttempts;
    if (retryLow) {
      // The next attempt must ask again from the first stage that left an output unsure; stages
      // before it keep their results, later ones may have used its answers and run again too.
      const first = p.stages.findIndex((s) => s.outputs.some((o) => unsure.includes(o)));
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
  }
  state.last_run = {
    attempt,
    started_at: run.startedAt,
    finished_at: now,
    outcome: low ? "done_low_confidence" : "done",
  };
  // Freshness: due again when its first value expires (outputs.<c>.ttl), or sooner to retry.
  const expiry = msUntilFirstExpiry(p, merged.columns, merged.values, nowMs);
  const retryIn = retryLow ? p.lowConfidenceRetryAfterMs : null;
  return {
    key: row.key,
    xmin: row.xmin,
    state,
    status: "done",
    nextInMs: retryIn === null || expiry === null ? (retryIn ?? expiry) : Math.min(retryIn, expiry),
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

function keepErrors(errors: ErrorRecord[]): ErrorRecord[] {
  return errors.length > MAX_ERRORS_KEPT ? errors.slice(-MAX_ERRORS_KEPT) : errors;
}
