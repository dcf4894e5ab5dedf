import type { ColumnProvenance } from "./row-state.ts";

/**
 * True when a reviewer's decision holds the column (`origin: human`, written by the review
 * function of migrations/000013): an approved or edited value while it is still there, a
 * rejected one while the column is still NULL. A user who clears an approved value, or writes
 * into a rejected column, takes the decision back: the usual rules apply again.
 */
export function lockedByReview(
  provenance: ColumnProvenance | undefined,
  current: unknown,
): boolean {
  if (provenance?.origin !== "human") return false;
  const empty = current === null || current === undefined;
  return provenance.review?.action === "rejected" ? empty : !empty;
}
