import type { PipelineConfig } from "../config/config-types.ts";

/**
 * The names of Gleaner's state columns on a pipeline's table (the table contract in the README).
 * `enriched_at` keeps its plain name under the default prefix; another prefix prefixes it too,
 * so two pipelines can share a table.
 */
export interface StateColumns {
  status: string;
  confidence: string;
  state: string;
  attempts: string;
  nextAt: string;
  claim: string;
  enrichedAt: string;
}

export function stateColumns(pipeline: Pick<PipelineConfig, "prefix">): StateColumns {
  const p = pipeline.prefix;
  return {
    status: `${p}status`,
    confidence: `${p}confidence`,
    state: `${p}state`,
    attempts: `${p}attempts`,
    nextAt: `${p}next_at`,
    claim: `${p}claim`,
    enrichedAt: p === "enrichment_" ? "enriched_at" : `${p}enriched_at`,
  };
}
