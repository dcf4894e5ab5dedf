import { rungStageName } from "../config/escalation-schema.ts";
import type { StageInputRow, StageRunner } from "../stages/stage-runner.ts";
import type { InstalledPipeline } from "./installed-pipeline.ts";
import { mergeCandidates, outputConfidence } from "./merge-candidates.ts";
import { addUsage, skippedRecord, type RowSnapshot, type StageRecord } from "./row-state.ts";
import type { RuntimeEvents } from "./runtime-events.ts";
import { rowBudgetLeft } from "./row-budget.ts";
import { runStage, stageInput } from "./run-stage.ts";
import type { RowRun } from "./settle-row.ts";
import { isCurrentRecord } from "./stage-reuse.ts";

export interface LadderContext {
  pipeline: InstalledPipeline;
  /** The pipeline's rungs in climbing order (src/stages/rungs/create-rung-runners.ts). */
  rungs: readonly StageRunner[];
  rows: ReadonlyMap<string, RowSnapshot>;
  runs: Map<string, RowRun>;
  signal: AbortSignal;
  log: (message: string) => void;
  events: RuntimeEvents;
  /** llm.budget.per_row_usd, the cap when the pipeline has none of its own. */
  globalPerRowUsd: number | undefined;
  /** Persists every row's state (a checkpoint, which also renews the lease). */
  checkpoint: () => Promise<void>;
}

/**
 * After a row's stages, the escalation ladder (pipelines.<p>.escalate): each rung in turn runs
 * for the rows that still have gaps — outputs of the extract stage that are NULL or below
 * min_confidence, the best values of every stage and rung so far counted — and answers only
 * those. Each rung's results are checkpointed before the next, so a crash or a retry resumes at
 * the rung (a rung already climbed for this pipeline version is not climbed again). A row stops
 * climbing when it has no gaps left, when the rungs run out, or when it reached
 * max_escalation_calls or its per-row budget (checked before each rung; the rung is then recorded
 * as skipped, and the row settles at its best). A rung that fails leaves the row as it was and is
 * climbed again at the next re-check.
 */
export async function climbLadder(context: LadderContext): Promise<void> {
  const { pipeline: p, runs, rows, signal } = context;
  const ladder = p.escalation;
  if (!ladder) return;
  const order = [...p.stages.map((s) => s.name), ...ladder.rungs.map(rungStageName)];
  for (const rung of context.rungs) {
    if (signal.aborted) return;
    const name = rung.config.name;
    const toRun: StageInputRow[] = [];
    for (const row of rows.values()) {
      const run = runs.get(row.key) as RowRun;
      if (run.failure) continue;
      const stages: Record<string, StageRecord> = { ...row.state.stages, ...run.stages };
      if (climbed(p, name, stages[name])) continue;
      const merged = mergeCandidates(p, row, stages);
      const gaps = ladder.outputs.filter((o) => outputConfidence(merged, o) < p.minConfidence);
      if (gaps.length === 0) continue;
      const stop = stopReason(p, run, stages, context.globalPerRowUsd);
      if (stop) {
        run.stages[name] = skippedRecord(p.version, row.attempts, new Date().toISOString(), stop);
        continue;
      }
      toRun.push({ ...stageInput(row, run, order), wants: gaps });
    }
    if (toRun.length === 0) continue;
    await runStage(rung, toRun, runs, rows, p, signal, context.log, context.events, {
      rung: true,
    });
    if (!signal.aborted) await context.checkpoint();
  }
}

/** A rung climbed for this pipeline version: it ran (or was stopped by a cap) already. */
export function climbed(
  p: InstalledPipeline,
  name: string,
  record: StageRecord | undefined,
): boolean {
  return (
    record !== undefined &&
    (record.status === "ok" || record.status === "skipped") &&
    isCurrentRecord(p, name, record)
  );
}

/** Why the row may not climb further: its escalation calls or its per-row budget are spent. */
function stopReason(
  p: InstalledPipeline,
  run: RowRun,
  stages: Readonly<Record<string, StageRecord>>,
  globalPerRowUsd: number | undefined,
): string | undefined {
  const ladder = p.escalation;
  if (!ladder) return undefined;
  // Paid calls only: an answer from the cache costs nothing.
  let calls = 0;
  for (const rung of ladder.rungs) {
    const record = stages[rungStageName(rung)];
    if (record && isCurrentRecord(p, rungStageName(rung), record))
      calls += (record.calls ?? []).filter((c) => c.outcome === "ok").length;
  }
  if (calls >= ladder.maxCalls)
    return `the row made its ${ladder.maxCalls} escalation calls (pipelines.${p.name}.escalate.max_escalation_calls)`;
  const perRow = p.budget?.perRowUsd ?? globalPerRowUsd;
  const spent = { state: { usage: addUsage(run.base.usage, run.usage) } };
  if (rowBudgetLeft(spent, perRow) <= 0)
    return `the row spent its budget of $${perRow} (budget.per_row_usd)`;
  return undefined;
}
