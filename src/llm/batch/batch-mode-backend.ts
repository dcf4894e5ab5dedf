// A `mode: batch` backend: a call is not sent live but queued for the OpenAI Batch API (half the
// price, answered within 24 h). The rows that asked wait (src/pipeline/settle-row.ts); when the
// batch is back they run again, ask the very same question, and get its answer from here, read
// exactly as a live answer is (readCompletion), so it goes through the stage's own validation,
// confidence and state contract.
import { randomUUID } from "node:crypto";
import type { ChatCompletion } from "openai/resources/chat/completions";
import type { Db } from "../../db/connect-database.ts";
import {
  openRequestFor,
  queueBatchRequest,
  takeBatchOutcome,
} from "../../sql/llm-batch-requests.ts";
import { answerCacheKey } from "../answer-cache.ts";
import { batchWireMode, chatCompletionBody, readCompletion } from "../llm-backend.ts";
import { LlmError } from "../llm-error.ts";
import type { LlmBackend, LlmBackendConfig, LlmCompletion, LlmRequest } from "../llm-types.ts";

/** What the Batch API charges of the live price. */
export const BATCH_PRICE_FACTOR = 0.5;
/** How long the Batch API may take to answer (`completion_window: 24h`). */
export const BATCH_COMPLETION_WINDOW_MS = 24 * 3_600_000;
/**
 * How long a waiting row stays out of the sweep's way: the window, the completion window and
 * two hours of margin. The poller makes it due as soon as the answer is in; this only matters
 * when no process polls (the row then comes back and asks again).
 */
export function batchWaitMs(config: LlmBackendConfig): number {
  return (config.batch_window_ms ?? 0) + BATCH_COMPLETION_WINDOW_MS + 2 * 3_600_000;
}

export function withBatchMode(
  backend: LlmBackend,
  config: LlmBackendConfig,
  db: Db,
  schema: string,
): LlmBackend {
  async function complete(req: LlmRequest): Promise<LlmCompletion> {
    const key = answerCacheKey(config, req);
    const outcome = await takeBatchOutcome(db, schema, config.name, key);
    if (outcome?.state === "answered") {
      return readCompletion(config, outcome.response as ChatCompletion, req, BATCH_PRICE_FACTOR, 0);
    }
    if (outcome?.state === "failed") {
      // Retried by the pipeline's usual backoff; the retry queues the question again.
      throw new LlmError(`Batch API request ${outcome.customId}: ${outcome.reason ?? "failed"}`, {
        errorClass: "server_error",
        backend: config.name,
      });
    }
    // The same question already on its way (another chunk asking it) is waited for, not
    // asked twice.
    let customId = await openRequestFor(db, schema, config.name, key);
    if (customId === undefined) {
      customId = randomUUID();
      await queueBatchRequest(db, schema, {
        customId,
        backend: config.name,
        requestKey: key,
        pipeline: req.origin?.pipeline ?? "",
        stage: req.origin?.stage ?? "",
        body: chatCompletionBody(config, req, batchWireMode(config)),
      });
    }
    throw new LlmError(`waiting for Batch API request ${customId}`, {
      errorClass: "batch_waiting",
      permanent: false,
      backend: config.name,
      waitingFor: customId,
      retryAfterMs: batchWaitMs(config),
    });
  }

  return { name: backend.name, model: backend.model, complete, inFlight: () => 0 };
}
