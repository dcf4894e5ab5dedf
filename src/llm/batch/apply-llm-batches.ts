// Polls the in-flight batches of a `mode: batch` backend (GET /batches/{id}); when one has ended,
// downloads its output and error files (GET /files/{id}/content), records each line's outcome by
// custom_id and makes the rows that asked due again, in one transaction (src/sql/llm-batches.ts
// finishBatch, src/sql/resume-batch-rows.ts). Any process can do it, after any restart.
import type OpenAI from "openai";
import type { Batch } from "openai/resources/batches";
import { coerceError } from "../../core/coerce-error.ts";
import type { Db } from "../../db/connect-database.ts";
import type { InstalledPipeline } from "../../pipeline/installed-pipeline.ts";
import { finishBatch, openBatches, type LineOutcome } from "../../sql/llm-batches.ts";
import { resumeBatchRows } from "../../sql/resume-batch-rows.ts";
import { costOf } from "../llm-backend.ts";
import type { LlmBackendConfig } from "../llm-types.ts";
import { BATCH_PRICE_FACTOR } from "./batch-mode-backend.ts";

const ENDED: ReadonlySet<Batch["status"]> = new Set([
  "completed",
  "failed",
  "expired",
  "cancelled",
]);

export interface ApplyResult {
  /** Batches that ended and were applied by this call. */
  applied: number;
  /** Rows made due again. */
  resumed: number;
}

export async function applyEndedBatches(
  db: Db,
  schema: string,
  workerSchema: string,
  config: LlmBackendConfig,
  client: OpenAI,
  resolve: (pipeline: string) => Promise<InstalledPipeline | undefined>,
  log: (message: string) => void,
): Promise<ApplyResult> {
  const result: ApplyResult = { applied: 0, resumed: 0 };
  for (const batch of await openBatches(db, schema, config.name)) {
    if (batch.state !== "in_flight" || batch.apiBatchId === null) continue;
    const remote = await client.batches.retrieve(batch.apiBatchId);
    if (!ENDED.has(remote.status)) continue;
    const lines = [
      ...(remote.output_file_id ? await readLines(client, remote.output_file_id, config) : []),
      ...(remote.error_file_id ? await readLines(client, remote.error_file_id, config) : []),
    ];
    const why = endReason(remote);
    const resumed = await db.transaction().execute(async (trx) => {
      const settled = await finishBatch(
        trx,
        schema,
        batch.id,
        { state: remote.status === "completed" ? "done" : "failed", reason: why },
        lines,
        why ?? `batch ${remote.id} ended (${remote.status}) without an answer for this request`,
      );
      if (!settled) return undefined;
      let rows = 0;
      for (const [name, ids] of settled) {
        const p = await resolve(name);
        if (!p) {
          log(`batch ${remote.id}: pipeline ${name} is gone; its rows are not resumed`);
          continue;
        }
        rows += await resumeBatchRows(trx, workerSchema, p, ids);
      }
      return rows;
    });
    if (resumed === undefined) continue;
    result.applied++;
    result.resumed += resumed;
  }
  return result;
}

/** Why a batch ended without answers: null when it completed. */
function endReason(remote: Batch): string | null {
  if (remote.status === "completed") return null;
  const errors = (remote.errors?.data ?? []).map((e) => e.message ?? e.code).filter(Boolean);
  return `Batch API batch ${remote.id} ${remote.status}${errors.length > 0 ? `: ${errors.join("; ")}` : ""}`;
}

interface OutputLine {
  custom_id?: unknown;
  response?: { status_code?: unknown; body?: unknown } | null;
  error?: { code?: unknown; message?: unknown } | null;
}

async function readLines(
  client: OpenAI,
  fileId: string,
  config: LlmBackendConfig,
): Promise<LineOutcome[]> {
  const text = await (await client.files.content(fileId)).text();
  const outcomes: LineOutcome[] = [];
  for (const raw of text.split("\n")) {
    if (raw.trim() === "") continue;
    let line: OutputLine;
    try {
      line = JSON.parse(raw) as OutputLine;
    } catch (error) {
      // The file is read again on the next poll: nothing of the batch is recorded until then.
      throw new Error(`file ${fileId}: a line is not JSON (${coerceError(error).message})`, {
        cause: error,
      });
    }
    if (typeof line.custom_id !== "string") continue;
    outcomes.push(lineOutcome(line.custom_id, line, config));
  }
  return outcomes;
}

function lineOutcome(customId: string, line: OutputLine, config: LlmBackendConfig): LineOutcome {
  const status = line.response?.status_code;
  if (status === 200 && line.response?.body && typeof line.response.body === "object") {
    const usage = (
      line.response.body as { usage?: { prompt_tokens?: number; completion_tokens?: number } }
    ).usage;
    const full = costOf(config, usage?.prompt_tokens ?? 0, usage?.completion_tokens ?? 0);
    return {
      customId,
      state: "answered",
      response: line.response.body,
      savedUsd: full * (1 - BATCH_PRICE_FACTOR),
    };
  }
  const body = line.response?.body as { error?: { message?: unknown } } | undefined;
  const found = line.error?.message ?? body?.error?.message;
  const message = typeof found === "string" ? found : JSON.stringify(found ?? "no answer");
  return {
    customId,
    state: "failed",
    reason: `Batch API line failed${typeof status === "number" ? ` (HTTP ${status})` : ""}: ${message}`,
  };
}
