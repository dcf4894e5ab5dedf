import type { Registry } from "prom-client";
import type { GleanerConfig } from "../config/config-types.ts";
import { cataloguedGauge } from "./catalogued-metric.ts";

/**
 * llm.budget_usd_per_hour as a gauge, so the cost alert compares the spend rate with the
 * configured figure rather than a number copied into the rule. With no budget configured the
 * metric is not registered at all: a gauge without labels always shows a value (0 by default),
 * and a budget of 0 would make the cost alert fire on the first cent.
 */
export function registerLlmBudgetGauge(registry: Registry, config: GleanerConfig): void {
  if (config.llmBudgetUsdPerHour === undefined) return;
  cataloguedGauge(registry, "gleaner_llm_budget_usd_per_hour").set(config.llmBudgetUsdPerHour);
}
