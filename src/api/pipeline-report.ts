import { STATUSES } from "../db/pipeline-ddl.ts";
import type { InstalledPipeline } from "../pipeline/installed-pipeline.ts";
import type { Runtime } from "../pipeline/runtime.ts";
import { countBacklog } from "../sql/count-backlog.ts";
import { failureReport } from "../sql/failure-report.ts";
import { oldestDue } from "../sql/has-due-rows.ts";
import { readRowCounts } from "../sql/row-counts.ts";

/** A pipeline's health at a glance, for /v1/pipelines and the status page: counters and
 * index probes only. */
export async function pipelineReport(runtime: Runtime, p: InstalledPipeline) {
  const counts = await readRowCounts(runtime.db, runtime.config.schema, p.name);
  const total = STATUSES.reduce((sum, s) => sum + (counts[s] ?? 0), 0);
  const due = await oldestDue(runtime.db, p);
  const failures = await failureReport(runtime.db, p);
  return {
    pipeline: p.name,
    table: `${p.table.schema}.${p.table.name}`,
    total,
    by_status: Object.fromEntries(STATUSES.map((s) => [s, counts[s] ?? 0])),
    completeness: total === 0 ? 1 : (counts.complete ?? 0) / total,
    fill: Object.fromEntries(
      p.outputs.map((o) => [o.name, total === 0 ? 1 : (counts[`filled:${o.name}`] ?? 0) / total]),
    ),
    low_confidence: counts.low_confidence ?? 0,
    backlog: await countBacklog(runtime.db, p),
    oldest_due_age_seconds: due.ageSeconds,
    failures_by_class: failures.byClass,
    worst_rows: failures.worst,
  };
}
