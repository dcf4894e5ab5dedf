import type { BudgetSettings } from "../config/config-types.ts";
import type { BudgetWindow, WindowKind } from "../sql/budget-ledger.ts";

const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;

/** Where the `kind` window holding `now` starts and ends (UTC clock hours and days). */
export function windowBounds(kind: WindowKind, now: number): { start: number; end: number } {
  const size = kind === "hour" ? HOUR_MS : DAY_MS;
  const start = Math.floor(now / size) * size;
  return { start, end: start + size };
}

/** The scope of a pipeline's budget; `global` is llm.budget's. */
export function pipelineScope(pipeline: string): string {
  return `pipeline:${pipeline}`;
}

/** The windows a call of `pipeline` reserves in at `now`: each configured hourly/daily cap. */
export function budgetWindows(
  now: number,
  pipeline: string,
  pipelineBudget: BudgetSettings | undefined,
  globalBudget: BudgetSettings | undefined,
): BudgetWindow[] {
  const windows: BudgetWindow[] = [];
  const add = (scope: string, budget: BudgetSettings | undefined) => {
    if (budget?.perHourUsd !== undefined)
      windows.push({
        scope,
        kind: "hour",
        start: windowBounds("hour", now).start,
        capUsd: budget.perHourUsd,
      });
    if (budget?.perDayUsd !== undefined)
      windows.push({
        scope,
        kind: "day",
        start: windowBounds("day", now).start,
        capUsd: budget.perDayUsd,
      });
  };
  add(pipelineScope(pipeline), pipelineBudget);
  add("global", globalBudget);
  return windows;
}
