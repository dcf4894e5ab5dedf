import type { Logger } from "pino";
import { STATUSES } from "../db/pipeline-ddl.ts";
import type { Runtime } from "../pipeline/runtime.ts";
import { oldestDue } from "../sql/has-due-rows.ts";
import { readRowCounts } from "../sql/row-counts.ts";
import { sweepPipeline } from "../sweep/sweep-pipeline.ts";
import { startWorker } from "./start-worker.ts";

export interface DrainProgress {
  pipeline: string;
  total: number;
  settled: number;
  /** Rows queued or running; absent where nothing is in flight by nature (an import). */
  inFlight?: number;
}

/**
 * Processes everything due now and returns: sweeps, runs jobs, sweeps again, until no row is
 * due, queued or running. Rows that fail are settled too (failed with a later due time, or
 * exhausted), so drain ends; it does not wait for retries in the future.
 */
export async function drain(options: {
  runtime: Runtime;
  url: string;
  logger: Logger;
  concurrency?: number;
  timeoutMs?: number;
  onProgress?: (progress: DrainProgress[]) => void;
  /** Only these pipelines (`gleaner eval` drains its shadow table alone); default: all. */
  only?: readonly string[];
}): Promise<{ timedOut: boolean; progress: DrainProgress[] }> {
  const { runtime } = options;
  const { db, config } = runtime;
  const pipelines = [...runtime.pipelines.values()]
    .map((e) => e.pipeline)
    .filter((p) => options.only?.includes(p.name) ?? true);
  const worker = await startWorker({
    runtime,
    url: options.url,
    logger: options.logger,
    ...(options.concurrency ? { concurrency: options.concurrency } : {}),
  });
  const deadline = Date.now() + (options.timeoutMs ?? Number.POSITIVE_INFINITY);
  let progress: DrainProgress[] = [];
  try {
    for (;;) {
      let claimed = 0;
      for (const p of pipelines) claimed += (await sweepPipeline(db, config, p)).claimed;
      progress = [];
      let busy = claimed > 0;
      for (const p of pipelines) {
        const counts = await readRowCounts(db, config.schema, p.name);
        const inFlight = (counts.queued ?? 0) + (counts.running ?? 0);
        const total = STATUSES.reduce((sum, s) => sum + (counts[s] ?? 0), 0);
        const settled = (counts.done ?? 0) + (counts.failed ?? 0) + (counts.exhausted ?? 0);
        progress.push({ pipeline: p.name, total, settled, inFlight });
        if (inFlight > 0 || (await oldestDue(db, p)).due) busy = true;
      }
      options.onProgress?.(progress);
      if (!busy) return { timedOut: false, progress };
      if (Date.now() > deadline) return { timedOut: true, progress };
      await new Promise((r) => setTimeout(r, claimed > 0 ? 20 : 100));
    }
  } finally {
    await worker.stop();
  }
}
