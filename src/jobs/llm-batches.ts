import type { Task } from "graphile-worker";
import { z } from "zod";
import { batchApiBackends } from "../config/batch-backends.ts";
import { coerceError } from "../core/coerce-error.ts";
import { applyEndedBatches } from "../llm/batch/apply-llm-batches.ts";
import { submitDueBatches } from "../llm/batch/submit-llm-batches.ts";
import { openAiClient } from "../llm/llm-backend.ts";
import type { Runtime } from "../pipeline/runtime.ts";
import { scheduleLlmBatches } from "../sql/schedule-llm-batches.ts";

/** The task takes no arguments: everything it needs is in <schema>.llm_batches. */
const payloadSchema = z.object({}).loose();
export type LlmBatchesPayload = z.infer<typeof payloadSchema>;

/** How often the Batch API is polled, at most; a backend's shorter batch_window polls sooner. */
const POLL_EVERY_MS = 60_000;

/**
 * The poll interval for the backends that use the Batch API (`mode: batch`, or named by a
 * `mode: batch` stage); undefined when there are none.
 */
export function llmBatchesPollMs(runtime: Runtime): number | undefined {
  const windows = batchApiBackends(runtime.config).map((b) => b.batch_window_ms ?? POLL_EVERY_MS);
  return windows.length === 0 ? undefined : Math.max(1_000, Math.min(POLL_EVERY_MS, ...windows));
}

/**
 * `gleaner_llm_batches`: for every `mode: batch` backend, submits the batches that are due and
 * applies the ones that ended (src/llm/batch/), then schedules its next run. Any process runs it
 * (one job key, so one at a time fleet-wide); a backend that fails is logged and tried again on
 * the next run, the others go on.
 */
export function makeLlmBatchesTask(runtime: Runtime): Task {
  return async (payload, helpers) => {
    const parsed = payloadSchema.safeParse(payload ?? {});
    if (!parsed.success) helpers.logger.error(`gleaner_llm_batches: malformed payload ignored`);
    const { config, db } = runtime;
    for (const backend of batchApiBackends(config)) {
      const client = openAiClient(backend);
      try {
        await submitDueBatches(db, config.schema, backend, client);
        await applyEndedBatches(
          db,
          config.schema,
          config.workerSchema,
          backend,
          client,
          async (name) => (await runtime.ensurePipeline(name))?.pipeline,
          (m) => helpers.logger.warn(m),
        );
      } catch (error) {
        helpers.logger.error(
          `backend ${backend.name}: Batch API round failed, tried again at the next poll: ${coerceError(error).message}`,
        );
      }
    }
    const every = llmBatchesPollMs(runtime);
    if (every !== undefined)
      await scheduleLlmBatches(db, config.workerSchema, new Date(Date.now() + every));
  };
}
