// Submits the queued requests of a `mode: batch` backend as OpenAI Batch API batches: one JSONL
// file uploaded through POST /files (purpose `batch`), then POST /batches for
// /v1/chat/completions with a 24 h completion window. Each step is recorded first
// (src/sql/llm-batches.ts), so a crash anywhere leaves nothing submitted twice and nothing lost.
import { toFile } from "openai";
import type OpenAI from "openai";
import type { Batch } from "openai/resources/batches";
import type { Db } from "../../db/connect-database.ts";
import {
  batchLines,
  lockSubmitting,
  openBatches,
  openDueBatch,
  recordSubmitted,
  type OpenBatch,
} from "../../sql/llm-batches.ts";
import type { LlmBackendConfig } from "../llm-types.ts";

/** The metadata key that carries a batch's marker (migrations/000012). */
export const MARKER_KEY = "gleaner_marker";
/**
 * A `submitting` batch older than this is taken to be left by a crashed process and is
 * submitted again, after checking by its marker that the API does not already have it.
 */
export const STALE_SUBMITTING_MS = 5 * 60_000;

export interface SubmitOptions {
  /** Overrides STALE_SUBMITTING_MS (tests). */
  staleSubmittingMs?: number;
}

/** Opens every batch that is due for `config`'s backend and submits it; returns how many. */
export async function submitDueBatches(
  db: Db,
  schema: string,
  config: LlmBackendConfig,
  client: OpenAI,
  options: SubmitOptions = {},
): Promise<number> {
  let submitted = 0;
  // Left by a crashed process: the API may have it already (found by marker) or not.
  for (const batch of await openBatches(db, schema, config.name)) {
    if (batch.state !== "submitting") continue;
    if (batch.ageMs < (options.staleSubmittingMs ?? STALE_SUBMITTING_MS)) continue;
    if (await submitBatch(db, schema, batch, client, true)) submitted++;
  }
  for (;;) {
    const opened = await openDueBatch(
      db,
      schema,
      config.name,
      config.batch_window_ms ?? 0,
      config.batch_max_requests ?? 50_000,
    );
    if (!opened) return submitted;
    const batch: OpenBatch = {
      ...opened,
      state: "submitting",
      apiBatchId: null,
      createdAt: 0,
      ageMs: 0,
    };
    if (await submitBatch(db, schema, batch, client, false)) submitted++;
  }
}

/**
 * Uploads a `submitting` batch's lines and creates the batch, holding the batch's row lock so
 * no other process sends it at the same time. `recovering`: first look for a batch the API
 * already has under this marker (the crash came after POST /batches), and adopt it.
 */
async function submitBatch(
  db: Db,
  schema: string,
  batch: OpenBatch,
  client: OpenAI,
  recovering: boolean,
): Promise<boolean> {
  return db.transaction().execute(async (trx) => {
    if (!(await lockSubmitting(trx, schema, batch.id))) return false;
    const existing = recovering ? await findByMarker(client, batch) : undefined;
    if (existing) {
      await recordSubmitted(trx, schema, batch.id, existing.id, existing.input_file_id);
      return true;
    }
    const lines = await batchLines(trx, schema, batch.id);
    const jsonl = lines
      .map((l) =>
        JSON.stringify({
          custom_id: l.customId,
          method: "POST",
          url: "/v1/chat/completions",
          body: l.body,
        }),
      )
      .join("\n");
    const file = await client.files.create({
      file: await toFile(Buffer.from(`${jsonl}\n`), `gleaner-${batch.marker}.jsonl`),
      purpose: "batch",
    });
    const created = await client.batches.create({
      input_file_id: file.id,
      endpoint: "/v1/chat/completions",
      completion_window: "24h",
      metadata: { [MARKER_KEY]: batch.marker },
    });
    await recordSubmitted(trx, schema, batch.id, created.id, file.id);
    return true;
  });
}

/** The API's batch carrying this marker, looking back to shortly before it was opened. */
async function findByMarker(client: OpenAI, batch: OpenBatch): Promise<Batch | undefined> {
  for await (const candidate of client.batches.list({ limit: 100 })) {
    if (candidate.metadata?.[MARKER_KEY] === batch.marker) return candidate;
    // Listed newest first: anything created well before the batch was opened is not it.
    if (candidate.created_at < batch.createdAt - 3_600) return undefined;
  }
  return undefined;
}
