import type { Task } from "graphile-worker";
import { z } from "zod";
import { runClaimedBatch } from "../src/pipeline/run-claimed-batch.ts";
import type { Runtime } from "../src/pipeline/runtime.ts";
import type { EnrichPayload } from "../src/sql/claim-due-rows.ts";

const payloadSchema = z.object({
  pipeline: z.string(),
  claim: z.uuid(),
  keys: z.array(z.string()).min(1),
  due: z.array(z.number()).optional(),
}) satisfies z.ZodType<EnrichPayload>;

/**
 * `gleaner_enrich`: one batch of rows claimed by a sweep. The payload names the rows and the
 * claim that fences them; everything else is read from the table, so a job enqueued before a
 * restart still runs with the current config.
 */
export function makeEnrichBatchTask(runtime: Runtime): Task {
  return async (payload, helpers) => {
    const parsed = payloadSchema.safeParse(payload);
    if (!parsed.success) {
      throw new Error(
        `gleaner_enrich job ${helpers.job.id} has a malformed payload: ${parsed.error.message}`,
      );
    }
    const outcome = await runClaimedBatch(runtime, parsed.data, helpers.abortSignal, (m) =>
      helpers.logger.info(m),
    );
    helpers.logger.debug(
      `pipeline ${parsed.data.pipeline}: ${outcome.rows} rows, ${outcome.done} done, ${outcome.failed} failed, ${outcome.exhausted} exhausted`,
    );
  };
}
