import type { Task } from "graphile-worker";
import { z } from "zod";
import { coerceError } from "../core/coerce-error.ts";
import { runClaimedBatch } from "../pipeline/run-claimed-batch.ts";
import type { Runtime } from "../pipeline/runtime.ts";
import type { EnrichPayload } from "../sql/claim-due-rows.ts";

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
 *
 * The task never throws. A row's fate lives in the row (its status, lease and attempts), not in
 * the job: when a job cannot finish (the database went away past the job's patience), its rows
 * come back when their lease runs out, and a failed job left in graphile-worker's table would
 * only pile up (it has one attempt, and retrying it would find its claim gone). The failure is
 * logged with the job's logger and counted.
 */
export function makeEnrichBatchTask(runtime: Runtime, stopSignal: AbortSignal): Task {
  return async (payload, helpers) => {
    const parsed = payloadSchema.safeParse(payload);
    if (!parsed.success) {
      helpers.logger.error(
        `gleaner_enrich job ${helpers.job.id} has a malformed payload, dropped: ${parsed.error.message}`,
      );
      runtime.events.emit("job:failed", { pipeline: "(unknown)", message: parsed.error.message });
      return;
    }
    try {
      const outcome = await runClaimedBatch(
        runtime,
        parsed.data,
        AbortSignal.any([helpers.abortSignal, stopSignal]),
        (m) => helpers.logger.warn(m),
      );
      helpers.logger.debug(
        `pipeline ${parsed.data.pipeline}: ${outcome.rows} rows, ${outcome.done} done, ${outcome.failed} failed, ${outcome.exhausted} exhausted`,
      );
    } catch (error) {
      const message = coerceError(error).message;
      helpers.logger.error(
        `pipeline ${parsed.data.pipeline}: job ${helpers.job.id} could not finish its ${parsed.data.keys.length} rows; they come back after their lease: ${message}`,
      );
      runtime.events.emit("job:failed", { pipeline: parsed.data.pipeline, message });
    }
  };
}
