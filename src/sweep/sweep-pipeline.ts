import type { GleanerConfig } from "../config/config-types.ts";
import type { Db } from "../db/connect-database.ts";
import type { InstalledPipeline } from "../pipeline/installed-pipeline.ts";
import { claimDueRows } from "../sql/claim-due-rows.ts";
import { compactRowCounts } from "../sql/row-counts.ts";

export interface SweepResult {
  pipeline: string;
  claimed: number;
  jobs: number;
  durationMs: number;
}

/** One sweep tick for one pipeline: claim what is due and enqueue it, then fold the counters. */
export async function sweepPipeline(
  db: Db,
  config: GleanerConfig,
  pipeline: InstalledPipeline,
  limit: number = pipeline.sweepLimit,
): Promise<SweepResult> {
  const started = performance.now();
  const { claimed, jobs } = await claimDueRows(db, config.workerSchema, pipeline, limit);
  await compactRowCounts(db, config.schema, pipeline.name);
  return { pipeline: pipeline.name, claimed, jobs, durationMs: performance.now() - started };
}
