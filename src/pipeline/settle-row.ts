import type { RowStatus } from "../db/pipeline-ddl.ts";
import type { InstalledPipeline } from "./installed-pipeline.ts";
import { retryDelayMs } from "./retry-delay.ts";
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
  stages: Record<string, StageRecord>;
  errors: ErrorRecord[];
  usage: UsageRecord | undefined;
  failure?: { stage: string; failure: StageFailure };
}

/** The state to persist mid-run: this run's stage records merged in, nothing else decided. */
export function checkpointState(p: InstalledPipeline, row: RowSnapshot, run: RowRun): RowState {
  return {
    ...row.state,
    version: p.version,
    stages: { ...row.state.stages, ...run.stages },
    errors: keepErrors([...(row.state.errors ?? []), ...run.errors]),
    usage: addUsage(row.state.usage, run.usage),
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
  const stages = state.stages ?? {};
  const columns: Record<string, ColumnProvenance> = { ...state.columns };
  const values: Record<string, unknown> = { ...row.values };
  const counted = new Set<string>();

  // Candidate per output: the most confident value among stages that succeeded for this
  // version; later stages win ties. Skipped stages' outputs do not count.
  for (const stage of p.stages) {
    const record = stages[stage.name];
    if (!record || record.status !== "ok" || record.version !== p.version) continue;
    for (const name of stage.outputs) {
      counted.add(name);
      const candidate = record.output?.[name];
      if (!candidate) continue;
      const current = values[name];
      const provenance = columns[name];
      const userWritten = current !== null && current !== undefined && !provenance;
      if (userWritten) continue;
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
      values[name] = candidate.value;
      columns[name] = {
        value: candidate.value,
        confidence: candidate.confidence,
        stage: stage.name,
        version: p.version,
        at: record.finished_at,
        ...(record.backend ? { backend: record.backend } : {}),
        ...(record.model ? { model: record.model } : {}),
        ...(candidate.sources ? { sources: candidate.sources } : {}),
      };
    }
  }
  state.columns = columns;
  const attempt = row.attempts;

  if (run.failure) {
    const { failure, stage } = run.failure;
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
      ...{ failedStage: stage },
    };
  }

  let confidence = 1;
  for (const name of counted) {
    const value = values[name];
    const c =
      value === null || value === undefined
        ? 0
        : columns[name]?.value === null || !columns[name]
          ? 1 // written by a user: trusted as given
          : (columns[name]?.confidence ?? 0);
    confidence = Math.min(confidence, c);
  }
  const low = confidence < p.minConfidence;
  const retryLow = low && attempt < p.retry.maxAttempts;
  if (retryLow) {
    // The next attempt must ask again from the first stage that left an output unsure; stages
    // before it keep their results, later ones may have used its answers and run again too.
    const first = p.stages.findIndex((s) =>
      s.outputs.some((o) => counted.has(o) && (columns[o]?.confidence ?? 0) < p.minConfidence),
    );
    if (first >= 0) {
      const kept = { ...stages };
      for (const s of p.stages.slice(first)) delete kept[s.name];
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

function keepErrors(errors: ErrorRecord[]): ErrorRecord[] {
  return errors.length > MAX_ERRORS_KEPT ? errors.slice(-MAX_ERRORS_KEPT) : errors;
}
