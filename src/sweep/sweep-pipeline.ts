import type { GleanerConfig } from "../config/config-types.ts";
import type { Db } from "../db/connect-database.ts";
import type { InstalledPipeline } from "../pipeline/installed-pipeline.ts";
import { claimDueRows } from "../sql/claim-due-rows.ts";
import { compactRowCounts } from "../sql/row-counts.ts";

export interface SweepResult {
  pipeline: string;
  claimed: number;
  jobs: number;
  /** Due rows exhausted instead of claimed: their last attempt was lost. */
  spent: number;
  durationMs: number;
}

/** Counter deltas are folded at most this often when a tick claims nothing. */
const IDLE_COMPACT_MS = 30_000;
/** Per installed pipeline object, so two Gleaners in one process (a library user, the tests)
 * never share a schedule, and a dropped ad-hoc pipeline leaves nothing behind. */
const lastCompacted = new WeakMap<object, number>();

/**
 * One sweep tick for one pipeline: claim what is due and enqueue it, then fold the counters —
 * on every busy tick, and on idle ones now and then, so an idle tick stays one index probe.
 */
export async function sweepPipeline(
  db: Db,
  config: GleanerConfig,
  pipeline: InstalledPipeline,
  limit: number = pipeline.sweepLimit,
): Promise<SweepResult> {
  const started = performance.now();
  const { claimed, jobs, spent } = await claimDueRows(db, config, pipeline, limit);
  const last = lastCompacted.get(pipeline) ?? 0;
  if (claimed + spent > 0 || Date.now() - last > IDLE_COMPACT_MS) {
    await compactRowCounts(db, config.schema, pipeline.name);
    lastCompacted.set(pipeline, Date.now());
  }
  return {
    pipeline: pipeline.name,
    claimed,
    jobs,
    spent,
    durationMs: performance.now() - started,
  };
}
