import type { SearchProvider } from "../search/search-provider.ts";
import { withBudget, type BudgetGuard } from "./budget-guard.ts";

/** The ledger's `model` for a search request: `gleaner cost --by backend` shows `serper (search)`. */
export const SEARCH_MODEL = "search";

/**
 * A paid search provider (`search.providers.<name>.price`, USD per request) within the budgets:
 * each request reserves its price against the pipeline's and `llm.budget`'s windows first and
 * settles it after, through the same ledger as LLM calls (budget-guard.ts). A refused
 * reservation throws BudgetExhaustedError without calling, and the search stage makes the row
 * wait as `budget_exhausted`. A failed request is settled at nothing (providers bill answers).
 * It sits below the search cache, so a cached search costs and reserves nothing; a request with
 * no `purpose` (not made for a pipeline's rows) is not charged.
 */
export function withSearchBudget(
  provider: SearchProvider,
  priceUsd: number,
  guard: BudgetGuard,
): SearchProvider {
  return {
    name: provider.name,
    async search(query, options) {
      const purpose = options.purpose;
      if (!purpose) return provider.search(query, options);
      const results = await withBudget(
        guard,
        {
          pipeline: purpose.pipeline,
          stage: purpose.stage,
          rowKeys: purpose.rowKeys,
          backend: provider.name,
          model: SEARCH_MODEL,
          estimateUsd: priceUsd,
        },
        () => provider.search(query, options),
        () => ({ inputTokens: 0, outputTokens: 0, costUsd: priceUsd }),
      );
      purpose.onCharge?.(priceUsd);
      return results;
    },
  };
}
