import type { RetryPolicy } from "../config/config-types.ts";

/**
 * Delay before attempt `attempt + 1`, after `attempt` failed: the policy's delay for that
 * attempt (the last one repeats), spread by ±jitter so rows that failed together do not all
 * come back together, and never shorter than a Retry-After the endpoint asked for.
 */
export function retryDelayMs(
  policy: RetryPolicy,
  attempt: number,
  retryAfterMs: number | undefined,
  random: () => number = Math.random,
): number {
  const base = policy.delaysMs[Math.min(Math.max(attempt, 1), policy.delaysMs.length) - 1] ?? 0;
  const spread = base * policy.jitter * (2 * random() - 1);
  return Math.max(Math.round(base + spread), retryAfterMs ?? 0);
}
