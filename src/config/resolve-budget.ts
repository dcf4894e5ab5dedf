import type { BudgetSettings, LlmBackendConfig } from "./config-types.ts";
import type { RawBudget } from "./budget-schema.ts";
import { ConfigError } from "./config-error.ts";

/** A `budget` block (pipelines.<p>.budget or llm.budget), checked against the backends. */
export function resolveBudget(
  raw: RawBudget | undefined,
  at: string,
  backends: readonly LlmBackendConfig[],
): BudgetSettings | undefined {
  if (raw === undefined) return undefined;
  if (raw.on_budget === "downgrade" && raw.downgrade_backends.length === 0)
    throw new ConfigError(
      `${at}.downgrade_backends`,
      "on_budget: downgrade needs at least one backend to downgrade to; name one from llm.backends or use on_budget: wait",
    );
  raw.downgrade_backends.forEach((name, i) => {
    if (!backends.some((b) => b.name === name))
      throw new ConfigError(
        `${at}.downgrade_backends[${i}]`,
        `backend "${name}" is not declared in llm.backends (declared: ${backends.map((b) => b.name).join(", ") || "none"})`,
      );
  });
  return {
    perRowUsd: raw.per_row_usd,
    perHourUsd: raw.per_hour_usd,
    perDayUsd: raw.per_day_usd,
    onBudget: raw.on_budget,
    downgradeBackends: raw.downgrade_backends,
  };
}
