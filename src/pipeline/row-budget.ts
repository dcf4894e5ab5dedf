import type { RowSnapshot } from "./row-state.ts";

/**
 * What a row may still spend under pipelines.<p>.budget.per_row_usd (or llm.budget's), from the
 * usage its state has counted over all its attempts; Infinity without a per-row cap. A stage
 * does not start for a row with nothing left (its row fails as `row_budget_exceeded`), and an
 * escalation ladder stops climbing at it.
 */
export function rowBudgetLeft(
  row: Pick<RowSnapshot, "state">,
  perRowUsd: number | undefined,
): number {
  if (perRowUsd === undefined) return Number.POSITIVE_INFINITY;
  return perRowUsd - (row.state.usage?.cost_usd ?? 0);
}

/** The class of a row stopped by its per-row cap: exhausted, since more attempts cannot help. */
export const ROW_BUDGET_EXCEEDED = "row_budget_exceeded";
/** The class of a row a window cap made wait: failed until the window resets, not counted. */
export const BUDGET_EXHAUSTED = "budget_exhausted";
