import type { Clock } from "../core/clock.ts";
import { countChatTokens } from "../llm/count-tokens.ts";
import { LlmError } from "../llm/llm-error.ts";
import type { LlmBackend, LlmBackendConfig, LlmCompletion, LlmRequest } from "../llm/llm-types.ts";
import { BudgetExhaustedError } from "./budget-exhausted-error.ts";
import { withBudget, type BudgetGuard } from "./budget-guard.ts";
import { expectedAnswerTokens } from "./expected-answer-tokens.ts";

/**
 * Answers vary in length; a reservation covers one this many times the expected size, so that
 * calls in flight at once cannot together pass a cap by more than one call's estimate unless an
 * answer is longer than that (test/budget.budget-ledger.test.ts).
 */
export const RESERVED_ANSWER_FACTOR = 2;

/**
 * What a call to `config` may cost, reserved before it is made: its prompt's real token count
 * (src/llm/count-tokens.ts), RESERVED_ANSWER_FACTOR times the answer's expected size, the
 * backend's price. 0 for a backend without a price.
 */
export function estimateCallUsd(config: LlmBackendConfig, req: LlmRequest): number {
  if (!config.price) return 0;
  const input = countChatTokens(req.system, req.prompt, config.model);
  const output =
    RESERVED_ANSWER_FACTOR * expectedAnswerTokens(req.schema, req.purpose?.rowKeys.length ?? 1);
  return (input * config.price.input_per_million + output * config.price.output_per_million) / 1e6;
}

export interface BudgetedBackend {
  backend: LlmBackend;
  config: LlmBackendConfig;
}

/**
 * `primary` within `pipeline`'s budget: each call reserves its estimate first and settles its
 * actual cost after (src/budget/budget-guard.ts). When a cap refuses it, `downgrade` backends
 * (on_budget: downgrade) are tried in order, each within the budget at its own price; the answer
 * then carries the cheaper backend's name, so each value's provenance says who answered. When
 * nothing fits, the call fails as `budget_exhausted` with retryAfterMs until the window resets.
 */
export function withLlmBudget(
  primary: BudgetedBackend,
  guard: BudgetGuard,
  pipeline: string,
  clock: Clock,
  downgrade: readonly BudgetedBackend[] = [],
): LlmBackend {
  const attempt = (target: BudgetedBackend, req: LlmRequest): Promise<LlmCompletion> =>
    withBudget(
      guard,
      {
        pipeline,
        stage: req.purpose?.stage ?? "(unknown)",
        rowKeys: req.purpose?.rowKeys ?? [],
        backend: target.config.name,
        model: target.config.model,
        estimateUsd: estimateCallUsd(target.config, req),
      },
      () => target.backend.complete(req),
      (r) => ({
        model: r.model,
        inputTokens: r.inputTokens,
        outputTokens: r.outputTokens,
        costUsd: r.costUsd,
      }),
      (error) =>
        error instanceof LlmError && error.usage
          ? {
              inputTokens: error.usage.inputTokens,
              outputTokens: error.usage.outputTokens,
              costUsd: error.usage.costUsd,
            }
          : undefined,
    );

  async function complete(req: LlmRequest): Promise<LlmCompletion> {
    let refused: BudgetExhaustedError | undefined;
    for (const target of [primary, ...downgrade]) {
      try {
        const result = await attempt(target, req);
        return target === primary ? result : { ...result, backend: target.config.name };
      } catch (error) {
        if (!(error instanceof BudgetExhaustedError)) throw error;
        refused ??= error;
      }
    }
    const error = refused as BudgetExhaustedError;
    throw new LlmError(error.message, {
      errorClass: "budget_exhausted",
      permanent: false,
      retryAfterMs: Math.max(error.resetAt - clock.now(), 0),
      backend: primary.config.name,
      cause: error,
    });
  }

  return {
    name: primary.backend.name,
    model: primary.backend.model,
    complete,
    inFlight: () => primary.backend.inFlight(),
  };
}
