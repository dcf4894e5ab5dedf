import type { Registry } from "prom-client";
import { budgetWindows } from "../budget/budget-windows.ts";
import type { Runtime } from "../pipeline/runtime.ts";
import { readBudgetWindows } from "../sql/budget-ledger.ts";
import { countBudgetWaitingRows } from "../sql/budget-waiting-rows.ts";
import { cataloguedCounter, cataloguedGauge } from "./catalogued-metric.ts";

/** The pipeline label of llm.budget, the cap on all pipelines together. */
export const ALL_PIPELINES = "_all";

/**
 * Budget windows and their caps, read at scrape time (every process sees the same windows),
 * rows waiting for a window, and the refusals of this process. Returns the unsubscriber.
 */
export function registerBudgetCollectors(registry: Registry, runtime: Runtime): () => void {
  const { db, config } = runtime;
  const pipelines = () => [...runtime.pipelines.values()].map((e) => e.pipeline);
  const windows = () =>
    pipelines()
      .flatMap((p) =>
        budgetWindows(Date.now(), p.name, p.budget, undefined).map((w) => ({ label: p.name, w })),
      )
      .concat(
        budgetWindows(Date.now(), "", undefined, config.llmBudget).map((w) => ({
          label: ALL_PIPELINES,
          w,
        })),
      );
  cataloguedGauge(registry, "gleaner_budget_limit_usd", {
    collect() {
      this.reset();
      for (const { label, w } of windows()) this.set({ pipeline: label, window: w.kind }, w.capUsd);
    },
  });
  cataloguedGauge(registry, "gleaner_budget_spent_usd", {
    async collect() {
      const found = windows();
      const read = await readBudgetWindows(
        db,
        config.schema,
        found.map((f) => f.w),
        Date.now(),
      );
      this.reset();
      read.forEach((r, i) =>
        this.set({ pipeline: found[i]?.label ?? "", window: r.window.kind }, r.spentUsd),
      );
    },
  });
  cataloguedGauge(registry, "gleaner_budget_waiting_rows", {
    async collect() {
      // Only pipelines with a window cap can have waiting rows: the others cost no statement.
      const capped = pipelines().filter(
        (p) => budgetWindows(Date.now(), p.name, p.budget, config.llmBudget).length > 0,
      );
      const counts = await Promise.all(
        capped.map(async (p) => [p.name, await countBudgetWaitingRows(db, p)] as const),
      );
      this.reset();
      for (const [pipeline, n] of counts) this.set({ pipeline }, n);
    },
  });
  const refusals = cataloguedCounter(registry, "gleaner_budget_refusals_total");
  const onRefused = ({ pipeline }: { pipeline: string }) => refusals.inc({ pipeline });
  runtime.events.on("budget:refused", onRefused);
  return () => runtime.events.off("budget:refused", onRefused);
}
