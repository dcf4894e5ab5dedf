import type { StageValue, ValueConflict, ValueEvidence } from "./row-state.ts";

/**
 * The evidence fields a stage's value carries into its column's provenance (quote, page fetch
 * time and hash, conflicts), only those it has, so a value found without them stays as small.
 */
export function evidenceOf(candidate: StageValue): ValueEvidence & { conflicts?: ValueConflict[] } {
  return {
    ...(candidate.quote === undefined ? {} : { quote: candidate.quote }),
    ...(candidate.fetched_at === undefined ? {} : { fetched_at: candidate.fetched_at }),
    ...(candidate.content_hash === undefined ? {} : { content_hash: candidate.content_hash }),
    ...(candidate.conflicts?.length ? { conflicts: candidate.conflicts } : {}),
  };
}
