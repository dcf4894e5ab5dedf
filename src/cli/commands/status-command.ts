import { noteBackendsOff } from "../../app/note-backends-off.ts";
import { connectDatabase, type Db } from "../../db/connect-database.ts";
import { STATUSES } from "../../db/pipeline-ddl.ts";
import { createLogger } from "../../log/create-logger.ts";
import {
  loadEveryInstalledPipeline,
  type InstalledPipeline,
} from "../../pipeline/installed-pipeline.ts";
import { oldestDue } from "../../sql/has-due-rows.ts";
import { readRowCounts } from "../../sql/row-counts.ts";
import { loadCliConfig } from "../load-cli-config.ts";

export interface PipelineStatus {
  pipeline: string;
  table: string;
  total: number;
  done: number;
  pending: number;
  queued: number;
  running: number;
  failed: number;
  exhausted: number;
  complete: number;
  completeness_pct: number;
  oldest_pending_age_seconds: number | null;
}

/** What a status is read from: the database and the installed pipelines. */
export interface StatusSource {
  db: Db;
  schema: string;
  pipelines: Iterable<InstalledPipeline>;
}

/** Counts come from the trigger-kept counters, the age from the pending index: no table scan. */
export async function readStatus({
  db,
  schema,
  pipelines,
}: StatusSource): Promise<PipelineStatus[]> {
  const out: PipelineStatus[] = [];
  for (const p of pipelines) {
    const counts = await readRowCounts(db, schema, p.name);
    const total = STATUSES.reduce((sum, s) => sum + (counts[s] ?? 0), 0);
    const complete = counts.complete ?? 0;
    const { ageSeconds } = await oldestDue(db, p, { status: "pending" });
    out.push({
      pipeline: p.name,
      table: `${p.table.schema}.${p.table.name}`,
      total,
      done: counts.done ?? 0,
      pending: counts.pending ?? 0,
      queued: counts.queued ?? 0,
      running: counts.running ?? 0,
      failed: counts.failed ?? 0,
      exhausted: counts.exhausted ?? 0,
      complete,
      completeness_pct: total === 0 ? 100 : Math.round((complete / total) * 1000) / 10,
      oldest_pending_age_seconds: ageSeconds === null ? null : Math.round(ageSeconds),
    });
  }
  return out;
}

/**
 * `gleaner status`: reads counters only, so it opens the database and the pipelines' install
 * records — not the runtime (LLM clients, crawler, browser), which it does not need.
 */
export async function statusCommand(options: { config: string; json?: boolean }): Promise<number> {
  const config = loadCliConfig(options.config);
  const logger = createLogger({ secrets: config.secrets });
  noteBackendsOff(config, logger);
  const database = await connectDatabase(config, { log: (line) => logger.warn(line) });
  try {
    const pipelines = await loadEveryInstalledPipeline(database.db, config);
    const status = await readStatus({ db: database.db, schema: config.schema, pipelines });
    if (options.json) {
      console.log(JSON.stringify(status, null, 2));
      return 0;
    }
    const header = [
      "pipeline",
      "total",
      "done",
      "pending",
      "queued",
      "running",
      "failed",
      "exhausted",
      "complete%",
      "oldest pending",
    ];
    const rows = status.map((s) =>
      [
        s.pipeline,
        s.total,
        s.done,
        s.pending,
        s.queued,
        s.running,
        s.failed,
        s.exhausted,
        `${s.completeness_pct}%`,
        s.oldest_pending_age_seconds === null ? "-" : formatAge(s.oldest_pending_age_seconds),
      ].map(String),
    );
    const widths = header.map((h, i) =>
      Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)),
    );
    for (const line of [header, ...rows]) {
      console.log(
        line
          .map((cell, i) => (i === 0 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0)))
          .join("  "),
      );
    }
    return 0;
  } finally {
    await database.close();
  }
}

function formatAge(seconds: number): string {
  if (seconds < 120) return `${seconds}s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)}m`;
  return `${Math.round(seconds / 3600)}h`;
}
