import type { Clock } from "../core/clock.ts";
import { coerceError } from "../core/coerce-error.ts";
import type { StageChunkResult, StageInputRow, StageRunner } from "../stages/stage-runner.ts";
import type { InstalledPipeline } from "./installed-pipeline.ts";
import { addUsage, NO_USAGE, type RowSnapshot, type StageRecord } from "./row-state.ts";
import type { RuntimeEvents } from "./runtime-events.ts";
import type { RowRun } from "./settle-row.ts";
import { reuseMarks } from "./stage-reuse.ts";

/** Fields a stage sees: inputs, then outputs as filled so far (this run wins over the table). */
export function stageInput(row: RowSnapshot, run: RowRun, order: readonly string[]): StageInputRow {
  const fields: Record<string, unknown> = { ...row.values, ...row.inputs };
  const data: Record<string, unknown> = {};
  // A table value's confidence is its provenance's, or 1 when a user wrote it.
  const confidence: Record<string, number> = {};
  for (const [col, value] of Object.entries(row.values)) {
    const provenance = row.state.columns?.[col];
    if (value === null || value === undefined) confidence[col] = 0;
    else confidence[col] = provenance && provenance.value !== null ? provenance.confidence : 1;
  }
  for (const name of order) {
    const record: StageRecord | undefined = run.stages[name] ?? row.state.stages?.[name];
    if (!record || record.status !== "ok") continue;
    for (const [col, v] of Object.entries(record.output ?? {})) {
      if (v.value === null || v.value === undefined) continue;
      fields[col] = v.value;
      confidence[col] = v.confidence;
    }
    if (record.data !== undefined) data[name] = record.data;
  }
  return { key: row.key, fields, data, confidence };
}

/**
 * Runs one stage over the rows that need it, `batchSize` rows to a chunk, chunks in parallel, and
 * records each row's result in its run. A failed row fails its run (no later stage runs for it);
 * for a `rung` (the escalation ladder, climb-ladder.ts) a failure is only recorded: the row keeps
 * what its stages found, and the rung is climbed again at the next re-check.
 */
export async function runStage(
  stage: StageRunner,
  rows: StageInputRow[],
  runs: Map<string, RowRun>,
  snapshots: ReadonlyMap<string, RowSnapshot>,
  pipeline: InstalledPipeline,
  signal: AbortSignal,
  log: (message: string) => void,
  events: RuntimeEvents,
  /** `clock`: the runtime's, which a record's times (what freshness measures ages by) come from. */
  options: { rung?: boolean; clock?: Clock } = {},
): Promise<void> {
  const size = stage.config.batchSize;
  const chunks: StageInputRow[][] = [];
  for (let i = 0; i < rows.length; i += size) chunks.push(rows.slice(i, i + size));
  await Promise.all(
    chunks.map(async (chunk) => {
      const started = Date.now();
      const startedAt = new Date(options.clock?.now() ?? started).toISOString();
      let result: StageChunkResult;
      try {
        result = await stage.run(chunk, { signal, pipeline: pipeline.name, log });
      } catch (error) {
        // A stage that throws fails its whole chunk, with the reason kept on every row.
        const message = coerceError(error).message;
        result = {
          rows: new Map(
            chunk.map((r) => [
              r.key,
              {
                ok: false as const,
                failure: { errorClass: "stage_error", message, permanent: false },
              },
            ]),
          ),
          calls: [],
          usage: new Map(),
        };
      }
      const finishedAt = new Date(options.clock?.now() ?? Date.now()).toISOString();
      // Failures of a chunk cut short by shutdown are interruptions, not errors: the rows go
      // back with the stage not done, and it runs again on the next attempt.
      const interrupted = signal.aborted;
      let ok = 0;
      const failed: Record<string, number> = {};
      for (const row of chunk) {
        const run = runs.get(row.key) as RowRun;
        const attempt = snapshots.get(row.key)?.attempts ?? 0;
        const got = result.rows.get(row.key);
        // The row's own share of the chunk's calls: rows not asked about spent nothing.
        const usage = result.usage.get(row.key) ?? NO_USAGE;
        const truncated = result.truncated?.get(row.key);
        const base = {
          version: pipeline.version,
          // A rung is current while the pipeline version is: it has no recipe of its own.
          ...(options.rung ? {} : reuseMarks(pipeline, stage.config, row)),
          attempt,
          started_at: startedAt,
          finished_at: finishedAt,
          duration_ms: Date.now() - started,
          calls: result.calls,
          usage,
          ...(truncated ? { truncated } : {}),
          ...(result.backend ? { backend: result.backend } : {}),
          ...(result.model ? { model: result.model } : {}),
        };
        run.usage = addUsage(run.usage, usage);
        if (got?.ok) {
          ok++;
          run.stages[stage.config.name] = {
            ...base,
            status: "ok",
            output: got.values,
            ...(got.data === undefined ? {} : { data: got.data }),
          };
        } else if (interrupted) {
          continue;
        } else if (got?.failure.waitingFor !== undefined) {
          // Handed to the Batch API: no error and no stage record; the row waits for the answer
          // (settle-row.ts) and this stage runs again, answered from the batch, when it is in.
          run.failure = { stage: stage.config.name, failure: got.failure };
        } else {
          const failure = got?.failure ?? {
            errorClass: "invalid_output",
            message: "the stage returned nothing for this row",
            permanent: false,
          };
          run.stages[stage.config.name] = {
            ...base,
            status: "error",
            error: {
              class: failure.errorClass,
              message: failure.message,
              permanent: failure.permanent,
            },
          };
          run.errors.push({
            at: finishedAt,
            stage: stage.config.name,
            attempt,
            class: failure.errorClass,
            message: failure.message,
            permanent: failure.permanent,
          });
          if (!options.rung) run.failure = { stage: stage.config.name, failure };
          failed[failure.errorClass] = (failed[failure.errorClass] ?? 0) + 1;
        }
      }
      events.emit("stage:chunk", {
        pipeline: pipeline.name,
        stage: stage.config.name,
        kind: stage.config.kind,
        durationMs: Date.now() - started,
        ok,
        failed,
        calls: result.calls,
        truncatedRows: result.truncated?.size ?? 0,
      });
    }),
  );
}
