import { z } from "zod";

/**
 * `pipelines.<p>.budget` and `llm.budget`: caps on what paid calls (LLM backends with a `price`,
 * search providers with a `price`) may spend, enforced across every process through PostgreSQL
 * (src/sql/budget-ledger.ts). Every key is optional; a budget with no cap enforces nothing.
 */
const usd = z.number().positive().max(1_000_000_000);

export const budgetSchema = z.strictObject({
  /** What one row may spend over all its attempts (its state's usage). */
  per_row_usd: usd.optional(),
  /** What may be spent per clock hour (UTC), across all processes. */
  per_hour_usd: usd.optional(),
  /** What may be spent per UTC day, across all processes. */
  per_day_usd: usd.optional(),
  /** wait: rows wait for the next window; downgrade: a call the cap refuses goes to
   * downgrade_backends instead, when they fit. */
  on_budget: z.enum(["wait", "downgrade"]).default("wait"),
  /** Cheaper backends (names from llm.backends), tried in order once the cap refuses a call. */
  downgrade_backends: z.array(z.string().min(1)).default([]),
});

export type RawBudget = z.output<typeof budgetSchema>;
