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
import { readLiveProcesses } from "../../worker/live-processes.ts";
import { loadCliConfig } from "../load-cli-config.ts";
import { printTable } from "../print-table.ts";

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
 * `gleaner status`: the pipelines' row counts and the live worker processes of the fleet. It reads counters only, so it opens the database and the pipelines' install
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
    const processes = await readLiveProcesses(database.db, config.schema);
    if (options.json) {
      console.log(JSON.stringify({ pipelines: status, processes }, null, 2));
      return 0;
    }
    printTable(
      [
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
      ],
      status.map((s) =>
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
      ),
    );
    console.log("");
    if (processes.length === 0) {
      console.log("no live worker processes");
    } else {
      printTable(
        ["process", "host", "pid", "version", "jobs in flight", "up", "last beat"],
        processes.map((p) =>
          [
            p.id,
            p.host,
            p.pid,
            p.version || "-",
            p.jobs_in_flight,
            formatAge(Math.round((Date.now() - Date.parse(p.started_at)) / 1000)),
            `${Math.round(p.heartbeat_age_seconds)}s`,
          ].map(String),
        ),
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
