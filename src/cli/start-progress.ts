import type { Gleaner } from "../app/open-gleaner.ts";
import { createFailureLog } from "../core/failure-log.ts";
import { maskUrl } from "../core/mask-secrets.ts";
import { readRowCounts } from "../sql/row-counts.ts";
import { readStatus, type PipelineStatus } from "./commands/status-command.ts";
import { createProgressReporter } from "./progress-reporter.ts";

/**
 * What `gleaner start` shows while it works: progress per pipeline (a bar on a terminal, a line
 * now and then elsewhere) while rows are in flight, and, each time a pipeline runs out of work,
 * a summary — completeness, fill per column, failures — and where to look next.
 */
export function watchStartProgress(
  app: Gleaner,
  options: { httpUrl: string | undefined; intervalMs?: number; write?: (text: string) => void },
): { stop: () => void } {
  const write = options.write ?? ((text: string) => process.stderr.write(text));
  const reporter = createProgressReporter();
  const busy = new Map<string, boolean>();
  let running = false;
  const failures = createFailureLog("progress", (m) => app.logger.warn(m));

  const tick = async () => {
    if (running) return;
    running = true;
    try {
      const status = await readStatus({
        db: app.database.db,
        schema: app.config.schema,
        pipelines: [...app.runtime.pipelines.values()].map((e) => e.pipeline),
      });
      const working = status.filter((s) => s.pending + s.queued + s.running > 0);
      if (working.length > 0)
        reporter.update(
          working.map((s) => ({
            pipeline: s.pipeline,
            total: s.total,
            settled: s.done + s.failed + s.exhausted,
            inFlight: s.queued + s.running,
          })),
        );
      for (const s of status) {
        const now = s.pending + s.queued + s.running > 0;
        if (busy.get(s.pipeline) && !now) {
          reporter.done();
          write(await summary(app, s, options.httpUrl));
        }
        busy.set(s.pipeline, now);
      }
      failures.succeeded();
    } catch (error) {
      failures.failed(error);
    } finally {
      running = false;
    }
  };
  const timer = setInterval(() => void tick(), options.intervalMs ?? 1000);
  void tick();
  return { stop: () => clearInterval(timer) };
}

async function summary(app: Gleaner, s: PipelineStatus, httpUrl: string | undefined) {
  const entry = app.runtime.pipelines.get(s.pipeline);
  const counts = await readRowCounts(app.database.db, app.config.schema, s.pipeline);
  const pct = (n: number) => (s.total === 0 ? "–" : `${Math.round((n / s.total) * 1000) / 10}%`);
  const fills = (entry?.pipeline.outputs ?? [])
    .map((o) => `${o.name} ${pct(counts[`filled:${o.name}`] ?? 0)}`)
    .join(", ");
  const table = s.table;
  const prefix = entry?.pipeline.prefix ?? "enrichment_";
  const columns = entry
    ? [entry.pipeline.key, ...entry.pipeline.inputs, ...entry.pipeline.outputs.map((o) => o.name)]
    : ["*"];
  const url = pastableUrl(app.database);
  const lines = [
    "",
    `${s.pipeline}: all ${s.total} rows processed — ${s.done} done, ${s.failed} failed (will retry), ${s.exhausted} exhausted`,
    `  completeness ${s.completeness_pct}% (every output filled); filled per column: ${fills}`,
    "  look next:",
    `    SQL:    psql "${url}" -c "select ${columns.join(", ")}, ${prefix}confidence from ${table} limit 20"`,
    `            why a value is missing: select ${prefix}state->'columns' from ${table} where <column> is null limit 5`,
  ];
  if (httpUrl) {
    lines.push(`    status: ${httpUrl}/`);
    lines.push(`    metrics: ${httpUrl}/metrics`);
  }
  lines.push(`    reprocess: update ${table} set <column> = null where …`, "");
  return `${lines.join("\n")}\n`;
}

/**
 * The database URL for the "look next" psql command. The embedded default's local password is
 * no secret, and a masked one makes a command that cannot be pasted; a URL of the user's own
 * (DATABASE_URL, database_url) keeps its password masked.
 */
export function pastableUrl(database: { url: string; embedded: boolean }): string {
  return database.embedded ? database.url : maskUrl(database.url);
}
