import { getMaxListeners, setMaxListeners } from "node:events";
import { coerceError } from "../core/coerce-error.ts";
import { retryWhileDisconnected } from "../db/retry-while-disconnected.ts";
import type { Runtime } from "./runtime.ts";
import type { RowWrite } from "../sql/write-row-states.ts";
import type { EnrichPayload } from "../sql/claim-due-rows.ts";
import { leaseClaimedRowsBack, releaseClaimedRows } from "../sql/release-claimed-rows.ts";
import { startClaimedRows } from "../sql/start-claimed-rows.ts";
import { loadCalibration } from "../sql/calibrations.ts";
import type { StageInputRow, StageRunner } from "../stages/stage-runner.ts";
import { evaluateWhen } from "./evaluate-when.ts";
import { canReuse } from "./stage-reuse.ts";
import { expiredStages } from "./column-freshness.ts";
import { runStage, stageInput } from "./run-stage.ts";
import { climbLadder } from "./climb-ladder.ts";
import { GuardedWriter } from "./guarded-writer.ts";
import { lockedByReview } from "./locked-by-review.ts";
import { addUsage, skippedRecord, type RowSnapshot } from "./row-state.ts";
import { rowBudgetLeft, ROW_BUDGET_EXCEEDED } from "./row-budget.ts";
import type { InstalledPipeline } from "./installed-pipeline.ts";
import { checkpointState, handBackState, settleRow, startRun, type RowRun } from "./settle-row.ts";

/** Pipelines whose stale calibration this process has said once (not once per job). */
const staleCalibrationSaid = new Set<string>();
/** The config allows at most 1,000 jobs at once per process (worker.concurrency). */
const MAX_CONCURRENT_JOBS = 1000;
/**
 * How long a job waits for an unreachable database (a restart, a failover) before giving up:
 * the LLM answers it holds are worth waiting for, and its writes are fenced, so a late one is
 * harmless. On shutdown it waits at most HAND_BACK_PATIENCE_MS.
 */
const DATABASE_PATIENCE_MS = 120_000;
const HAND_BACK_PATIENCE_MS = 3_000;

export interface BatchOutcome {
  rows: number;
  done: number;
  failed: number;
  exhausted: number;
  released: number;
  lost: number;
}

/**
 * The stage machine for one job: take the claimed rows, run each stage over the rows that
 * still need it, persist each stage's results before the next starts, then settle every row.
 * A stage that already succeeded for this pipeline version (an earlier, interrupted run) is
 * skipped. On shutdown (abort), rows are handed back after the current stage is persisted.
 */
export async function runClaimedBatch(
  runtime: Runtime,
  payload: EnrichPayload,
  workerSignal: AbortSignal,
  log: (message: string) => void,
): Promise<BatchOutcome> {
  const entry = await runtime.ensurePipeline(payload.pipeline);
  if (!entry) throw new Error(`job for unknown pipeline ${payload.pipeline}: check the config`);
  const { pipeline: p, stages } = entry;
  const db = runtime.db;
  const outcome: BatchOutcome = { rows: 0, done: 0, failed: 0, exhausted: 0, released: 0, lost: 0 };

  const patience = {
    maxWaitMs: DATABASE_PATIENCE_MS,
    signal: workerSignal,
    afterAbortMs: HAND_BACK_PATIENCE_MS,
    log,
  };
  let snapshots: RowSnapshot[];
  try {
    snapshots = await retryWhileDisconnected(
      `pipeline ${p.name}: starting rows`,
      () => startClaimedRows(db, p, payload.claim, payload.keys),
      patience,
    );
  } catch (error) {
    await giveBackAfterLease(runtime, p, payload, log);
    throw error;
  }
  outcome.rows = snapshots.length;
  if (snapshots.length === 0) return outcome;

  // graphile-worker's signal is shared by every job of the process: each job listens on it once
  // and hands its calls a signal of its own, so hundreds of calls in flight never pile their
  // listeners onto one target.
  const controller = new AbortController();
  const signal = controller.signal;
  const onAbort = () => controller.abort(workerSignal.reason);
  // One listener per concurrent job is expected on the shared signal, not a leak.
  if (getMaxListeners(workerSignal) < MAX_CONCURRENT_JOBS)
    setMaxListeners(MAX_CONCURRENT_JOBS, workerSignal);
  if (workerSignal.aborted) onAbort();
  else workerSignal.addEventListener("abort", onAbort, { once: true });
  // Every chunk's calls, and every row of a research stage (its own deadline, its searches),
  // listen on the job's signal for as long as they run.
  setMaxListeners(
    Math.max(10, 4 * Math.ceil(snapshots.length / p.batchSize) + 16 * snapshots.length),
    signal,
  );
  const writer = new GuardedWriter(db, p, payload.claim, snapshots, {
    patienceMs: DATABASE_PATIENCE_MS,
    signal,
    afterAbortMs: HAND_BACK_PATIENCE_MS,
    log,
  });
  const startedAt = new Date(runtime.clock.now()).toISOString();
  const stageOrder = p.stages.map((s) => s.name);
  const runs = new Map<string, RowRun>(snapshots.map((s) => [s.key, startRun(s, startedAt)]));
  // Freshness: the stages filling a value older than its ttl run again; the rest are reused.
  const expired = new Map(
    snapshots.map((s) => [s.key, expiredStages(p, s.state, runtime.clock.now())]),
  );
  const renew = (row: RowSnapshot) => ({
    key: row.key,
    xmin: row.xmin,
    state: checkpointState(p, row, runs.get(row.key) as RowRun),
    status: "running" as const,
    nextInMs: p.leaseMs,
  });
  // The lease is renewed by every checkpoint, and by this timer when a stage runs long.
  const heartbeat = setInterval(
    () => {
      writer.write([...writer.rows.keys()], renew, false).catch((error: unknown) => {
        log(`lease renewal failed: ${coerceError(error).message}`);
      });
    },
    Math.max(250, Math.floor(p.leaseMs / 3)),
  );

  // A job that fails for a reason other than shutdown gives its rows back after their lease.
  try {
    try {
      for (let i = 0; i < stages.length; i++) {
        if (signal.aborted) break;
        const stage = stages[i] as StageRunner;
        // Each row's input to this stage, built once: for the reuse check, then for the stage.
        const inputs = new Map<string, StageInputRow>();
        const ready = [...writer.rows.values()].filter((row) => {
          const run = runs.get(row.key) as RowRun;
          if (run.failure) return false;
          if (overRowBudget(p, row, run, stage.config.name, runtime.config.llmBudget?.perRowUsd))
            return false;
          // A stage that succeeded for the same recipe and inputs (an interrupted run, a reset
          // that left it valid) is not run again: src/pipeline/stage-reuse.ts.
          const done = row.state.stages?.[stage.config.name];
          if (
            done?.status === "ok" &&
            !run.stages[stage.config.name] &&
            !expired.get(row.key)?.has(stage.config.name)
          ) {
            const input = stageInput(row, run, stageOrder);
            inputs.set(row.key, input);
            if (canReuse(p, stage.config, done, input)) return false;
          }
          return true;
        });
        const toRun: StageInputRow[] = [];
        for (const row of ready) {
          const input =
            inputs.get(row.key) ?? stageInput(row, runs.get(row.key) as RowRun, stageOrder);
          const when = stage.config.when;
          // A stage whose every output a reviewer decided on has nothing left to answer: it is
          // not asked again (a rejected value would only be asked for the same way).
          const outputs = stage.config.outputs;
          const reviewed =
            outputs.length > 0 &&
            outputs.every((o) => lockedByReview(row.state.columns?.[o], row.values[o]));
          if (reviewed || (when && !evaluateWhen(when, input.fields, input.confidence))) {
            (runs.get(row.key) as RowRun).stages[stage.config.name] = skippedRecord(
              p.version,
              row.attempts,
              new Date(runtime.clock.now()).toISOString(),
              reviewed
                ? "a reviewer decided on every output it fills"
                : "its `when` condition does not hold",
            );
          } else {
            toRun.push(input);
          }
        }
        if (toRun.length < ready.length)
          runtime.events.emit("stage:skipped", {
            pipeline: p.name,
            stage: stage.config.name,
            rows: ready.length - toRun.length,
          });
        await runStage(stage, toRun, runs, writer.rows, p, signal, log, runtime.events, {
          clock: runtime.clock,
        });
        if ((i < stages.length - 1 || entry.rungs.length > 0) && !signal.aborted) {
          await writer.write([...writer.rows.keys()], renew, false);
        }
      }
      await climbLadder({
        pipeline: p,
        rungs: entry.rungs,
        rows: writer.rows,
        runs,
        signal,
        log,
        events: runtime.events,
        globalPerRowUsd: runtime.config.llmBudget?.perRowUsd,
        checkpoint: async () => {
          await writer.write([...writer.rows.keys()], renew, false);
        },
      });
    } finally {
      clearInterval(heartbeat);
      workerSignal.removeEventListener("abort", onAbort);
      await writer.flush();
    }

    const keys = [...writer.rows.keys()];
    if (signal.aborted) {
      // Persist what the finished stages produced, then hand the rows back. The interruption is
      // no failure: it is kept as the row's last run, not in its errors.
      await writer.write(
        keys,
        (row) => ({ ...renew(row), state: handBackState(p, row, runs.get(row.key) as RowRun) }),
        false,
      );
      outcome.released = await retryWhileDisconnected(
        `pipeline ${p.name}: handing rows back`,
        () => releaseClaimedRows(db, p, payload.claim, [...writer.rows.keys()]),
        { maxWaitMs: HAND_BACK_PATIENCE_MS, log },
      );
      log(`shutting down: handed ${outcome.released} rows back`);
      runtime.events.emit("rows:released", { pipeline: p.name, rows: outcome.released });
      return outcome;
    }
    const settled = new Map<string, RowWrite>();
    // Calibration refines confidences; it never keeps rows from settling: when it cannot be
    // read (the migration that creates its table not applied yet), values keep their raw ones.
    const calibration = p.calibrate
      ? await retryWhileDisconnected(
          `pipeline ${p.name}: reading its calibration`,
          () => loadCalibration(db, runtime.config.schema, p.name, p.version),
          patience,
        ).then(
          (loaded) => {
            if (loaded.otherVersion !== undefined && !staleCalibrationSaid.has(p.name)) {
              staleCalibrationSaid.add(p.name);
              log(
                `pipeline ${p.name}: its stored calibration was learnt for version ${loaded.otherVersion}, not ${p.version}: confidences stay raw until \`gleaner eval ${p.name}\` learns it again`,
              );
            }
            return loaded.calibration;
          },
          (error: unknown) => {
            log(`pipeline ${p.name}: calibration not applied: ${coerceError(error).message}`);
            return undefined;
          },
        )
      : undefined;
    await writer.write(
      keys,
      (row) => {
        const write = settleRow(
          p,
          row,
          runs.get(row.key) as RowRun,
          Math.random,
          runtime.clock.now(),
          calibration,
        );
        settled.set(row.key, write);
        return write;
      },
      true,
      (row, error) => {
        const write = unstorableWrite(p, row, runs.get(row.key) as RowRun, error);
        settled.set(row.key, write);
        return write;
      },
    );
    const dueAt = new Map(payload.keys.map((k, i) => [k, payload.due?.[i]]));
    const now = Date.now();
    for (const key of writer.rows.keys()) {
      const write = settled.get(key);
      if (!write) continue;
      if (write.status === "done") outcome.done++;
      else if (write.status === "failed") outcome.failed++;
      else if (write.status === "exhausted") outcome.exhausted++;
      const due = dueAt.get(key);
      runtime.events.emit("row:settled", {
        pipeline: p.name,
        status: write.status,
        confidence: write.confidence ?? null,
        latencyMs: due === undefined ? null : Math.max(0, now - due),
      });
    }
    outcome.lost = writer.lost.size;
    if (outcome.lost > 0)
      runtime.events.emit("rows:lost", { pipeline: p.name, rows: outcome.lost });
    return outcome;
  } catch (error) {
    if (!signal.aborted) await giveBackAfterLease(runtime, p, payload, log);
    throw error;
  }
}

/**
 * The write for a row whose values PostgreSQL refused (a value too long or out of range for the
 * column, a character it cannot store): the attempt fails as `unstorable_value`, the row's
 * values and their provenance stay as they were, and retry rules apply as to any failure.
 */
function unstorableWrite(
  p: InstalledPipeline,
  row: RowSnapshot,
  run: RowRun,
  error: Error,
): RowWrite {
  const message = `PostgreSQL refused this row's values (${error.message}); none was written`;
  const failure = { errorClass: "unstorable_value", message, permanent: false };
  const failed = settleRow(p, row, {
    ...run,
    errors: [
      ...run.errors,
      {
        at: new Date().toISOString(),
        stage: "write",
        attempt: row.attempts,
        class: failure.errorClass,
        message,
        permanent: false,
      },
    ],
    failure: { stage: "write", failure },
  });
  return {
    ...failed,
    values: row.values,
    state: { ...failed.state, columns: row.state.columns ?? {} },
  };
}

/**
 * After a job failed for a reason other than shutdown, its rows come back when their lease
 * runs out, as if the worker had died: including rows it never started, which would otherwise
 * wait for queue_timeout. Best effort: the database may be what failed.
 */
async function giveBackAfterLease(
  runtime: Runtime,
  p: InstalledPipeline,
  payload: EnrichPayload,
  log: (message: string) => void,
): Promise<void> {
  await leaseClaimedRowsBack(runtime.db, p, payload.claim, payload.keys).catch((error: unknown) =>
    log(
      `pipeline ${p.name}: could not shorten the rows' deadline (they come back after queue_timeout): ${coerceError(error).message}`,
    ),
  );
}

/**
 * Stops a row that spent its pipelines.<p>.budget.per_row_usd (usage counted so far, this run's
 * included): it fails as row_budget_exceeded, permanently, before the stage spends more.
 */
function overRowBudget(
  p: InstalledPipeline,
  row: RowSnapshot,
  run: RowRun,
  stage: string,
  globalPerRowUsd: number | undefined,
): boolean {
  const perRow = p.budget?.perRowUsd ?? globalPerRowUsd;
  if (perRow === undefined) return false;
  const spent = { state: { usage: addUsage(run.base.usage, run.usage) } };
  if (rowBudgetLeft(spent, perRow) > 0) return false;
  const message = `the row spent its budget of $${perRow} (pipelines.${p.name}.budget.per_row_usd)`;
  run.errors.push({
    at: new Date().toISOString(),
    stage,
    attempt: row.attempts,
    class: ROW_BUDGET_EXCEEDED,
    message,
    permanent: true,
  });
  run.failure = { stage, failure: { errorClass: ROW_BUDGET_EXCEEDED, message, permanent: true } };
  return true;
}
