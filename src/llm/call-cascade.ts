import { classifyLlmError } from "./classify-llm-error.ts";
import { LlmError } from "./llm-error.ts";
import type {
  LlmAttempt,
  LlmBackend,
  LlmCascadeResult,
  LlmRequest,
  LlmUsage,
} from "./llm-types.ts";

function sumUsage(attempts: LlmAttempt[]): LlmUsage {
  const usage: LlmUsage = { inputTokens: 0, outputTokens: 0, costUsd: 0 };
  for (const attempt of attempts) {
    usage.inputTokens += attempt.inputTokens;
    usage.outputTokens += attempt.outputTokens;
    usage.costUsd += attempt.costUsd;
  }
  return usage;
}

const NOTHING_TO_REMEMBER = (): Promise<void> => Promise.resolve();

function abortedError(attempts: LlmAttempt[], cause?: unknown): LlmError {
  return new LlmError("LLM cascade aborted", {
    errorClass: "aborted",
    permanent: false,
    attempts,
    cause,
  });
}

/**
 * Tries each backend once, in order, and returns the first answer that parses. Retrying the
 * whole cascade later is the job queue's business, which is why the final error carries
 * `permanent` and `retryAfterMs` for the whole set rather than for one backend. A backend with
 * the answer cache in front (answer-cache.ts) may answer from it: that attempt is `cached`,
 * costs nothing and is that backend's answer, validated by the stage like a live one.
 */
export async function callCascade(
  backends: LlmBackend[],
  req: LlmRequest,
): Promise<LlmCascadeResult> {
  if (backends.length === 0) {
    throw new LlmError("no LLM backends configured for this call", { errorClass: "bad_request" });
  }
  const attempts: LlmAttempt[] = [];
  const errors: LlmError[] = [];
  for (const backend of backends) {
    if (req.signal?.aborted) throw abortedError(attempts, req.signal.reason);
    const startedAt = new Date();
    const started = performance.now();
    try {
      const result = await backend.complete(req);
      // A budget downgrade answers under the cheaper backend's name: recorded per value.
      const answeredBy = result.backend ?? backend.name;
      const attempt: LlmAttempt = {
        backend: answeredBy,
        model: result.model,
        startedAt: startedAt.toISOString(),
        durationMs: Math.round(performance.now() - started),
        outcome: result.cached ? "cached" : "ok",
        inputTokens: result.inputTokens,
        outputTokens: result.outputTokens,
        costUsd: result.costUsd,
      };
      if (result.cached) {
        attempt.savedInputTokens = result.cached.inputTokens;
        attempt.savedOutputTokens = result.cached.outputTokens;
        attempt.savedCostUsd = result.cached.costUsd;
      }
      attempts.push(attempt);
      return {
        json: result.json,
        backend: answeredBy,
        model: result.model,
        attempts,
        usage: sumUsage(attempts),
        remember: result.remember ?? NOTHING_TO_REMEMBER,
      };
    } catch (err) {
      // A call handed to the Batch API is no failure: the rows wait for its answer, and asking
      // the next backend live would pay full price for what is already on its way.
      if (err instanceof LlmError && err.waitingFor !== undefined) throw err;
      const error = classifyLlmError(err, { backend: backend.name });
      const attempt: LlmAttempt = {
        backend: backend.name,
        model: backend.model,
        startedAt: startedAt.toISOString(),
        durationMs: Math.round(performance.now() - started),
        outcome: "error",
        errorClass: error.errorClass,
        message: error.message,
        inputTokens: error.usage?.inputTokens ?? 0,
        outputTokens: error.usage?.outputTokens ?? 0,
        costUsd: error.usage?.costUsd ?? 0,
      };
      if (error.status !== undefined) attempt.status = error.status;
      if (error.retryAfterMs !== undefined) attempt.retryAfterMs = error.retryAfterMs;
      attempts.push(attempt);
      errors.push(error);
      if (req.signal?.aborted) throw abortedError(attempts, error);
    }
  }
  const last = errors[errors.length - 1] as LlmError;
  const retryAfters = errors.flatMap((e) => (e.retryAfterMs === undefined ? [] : [e.retryAfterMs]));
  const summary = attempts.map((a) => `${a.backend}: ${a.errorClass} (${a.message})`).join("; ");
  throw new LlmError(`all ${attempts.length} LLM backends failed: ${summary}`, {
    errorClass: last.errorClass,
    permanent: errors.every((e) => e.permanent),
    retryAfterMs: retryAfters.length > 0 ? Math.max(...retryAfters) : undefined,
    attempts,
    status: last.status,
    cause: last,
  });
}
