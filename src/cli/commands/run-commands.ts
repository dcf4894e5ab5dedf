import type { Gleaner } from "../../app/open-gleaner.ts";
import { createApiRouter } from "../../api/api-router.ts";
import { startHttpServer } from "../../http/start-http-server.ts";
import { createMetrics, type Metrics } from "../../metrics/create-metrics.ts";
import { startScheduler } from "../../sweep/scheduler.ts";
import { sweepPipeline } from "../../sweep/sweep-pipeline.ts";
import { drain } from "../../worker/drain.ts";
import { startWorker } from "../../worker/start-worker.ts";
import { openFromCli, watchStopSignals } from "../cli-context.ts";
import { surviveDatabaseOutages } from "../survive-database-outages.ts";
import { createProgressReporter } from "../progress-reporter.ts";
import { watchStartProgress } from "../start-progress.ts";
import { servedCorpora } from "../../search/corpus-folders.ts";

interface RunOptions {
  config: string;
  migrate?: boolean;
  http?: boolean;
  concurrency?: string;
}

async function serveHttp(
  app: Gleaner,
  metrics: Metrics,
  notReady: () => string | undefined = () => undefined,
) {
  const http = await startHttpServer({
    notReady,
    host: app.config.http.host,
    port: app.config.http.port,
    registry: metrics.registry,
    database: app.database,
    schema: app.config.schema,
    api: createApiRouter(app.runtime, (m) => app.logger.warn(m)),
    corpora: servedCorpora(app.config),
  });
  app.logger.info(
    `status page ${http.url}/, API ${http.url}/v1 (${http.url}/openapi.json), metrics and health on /metrics, /healthz, /readyz`,
  );
  if (app.config.api.tokens.length === 0)
    app.logger.info(
      "no api.tokens configured: the API and status page answer only loopback clients asking for a loopback host (localhost, 127.x, [::1]); /metrics and health stay open",
    );
  return http;
}

function sweeps(app: Gleaner, metrics: Metrics | undefined) {
  return (r: { pipeline: string; claimed: number; durationMs: number }) => {
    metrics?.sweepClaimed.inc({ pipeline: r.pipeline }, r.claimed);
    metrics?.sweepDuration.observe({ pipeline: r.pipeline }, r.durationMs / 1000);
    if (r.claimed > 0) app.logger.info(`sweep ${r.pipeline}: enqueued ${r.claimed} rows`);
  };
}

/** `gleaner start`: migrate, then scheduler + workers + HTTP in one process. */
export async function startCommand(options: RunOptions): Promise<number> {
  const stop = watchStopSignals();
  const app = await openFromCli(options, { migrate: options.migrate !== false });
  const { logger } = app;
  stop.attach(logger, () => app.database.stopEmbedded());
  let worker: Awaited<ReturnType<typeof startWorker>> | undefined = undefined;
  const unguard = surviveDatabaseOutages(logger, () => worker?.lostDatabaseCall());
  logger.info(`using ${app.database.description}`);
  for (const m of app.migration?.pipelines ?? [])
    logger.info(
      `pipeline ${m.name}: table ${m.table} ${m.outcome}${m.seeded ? `, ${m.seeded} rows loaded from its seed` : ""}`,
    );
  for (const c of app.migration?.corpora ?? [])
    logger.info(`search provider ${c.provider}: ${c.documents} documents indexed`);
  const metrics = createMetrics(app.runtime);
  const http =
    options.http === false ? undefined : await serveHttp(app, metrics, () => worker?.notReady());
  worker = await startWorker({
    runtime: app.runtime,
    url: app.database.url,
    logger,
    events: metrics.workerEvents,
    ...(options.concurrency ? { concurrency: Number(options.concurrency) } : {}),
  });
  const scheduler = await startScheduler({
    db: app.database.db,
    pool: app.database.listenPool,
    config: app.config,
    pipelines: [...app.runtime.pipelines.values()].map((e) => e.pipeline),
    resolve: async (name) => (await app.runtime.ensurePipeline(name))?.pipeline,
    log: (m) => logger.warn(m),
    onSweep: sweeps(app, metrics),
  });
  for (const { pipeline: p } of app.runtime.pipelines.values()) {
    logger.info(
      `pipeline ${p.name}: sweeping ${p.table.schema}.${p.table.name} on "${p.schedule}". Insert rows with SQL, e.g. ` +
        `INSERT INTO ${p.table.schema}.${p.table.name} (${p.inputs.join(", ")}) VALUES (...)`,
    );
  }
  const progress = watchStartProgress(app, { httpUrl: http?.url.replace("0.0.0.0", "127.0.0.1") });
  await stop.received;
  // Rows first (handed back while the database is still up), the embedded database last.
  progress.stop();
  await scheduler.stop();
  await worker.stop();
  await http?.close();
  metrics.close();
  await app.close();
  unguard();
  return 0;
}

/** `gleaner worker`: runs jobs only; another process sweeps. */
export async function workerCommand(options: RunOptions): Promise<number> {
  const stop = watchStopSignals();
  const app = await openFromCli(options);
  stop.attach(app.logger, () => app.database.stopEmbedded());
  let worker: Awaited<ReturnType<typeof startWorker>> | undefined = undefined;
  const unguard = surviveDatabaseOutages(app.logger, () => worker?.lostDatabaseCall());
  app.logger.info(`worker using ${app.database.description}`);
  const metrics = options.http ? createMetrics(app.runtime) : undefined;
  const http = metrics ? await serveHttp(app, metrics, () => worker?.notReady()) : undefined;
  worker = await startWorker({
    runtime: app.runtime,
    url: app.database.url,
    logger: app.logger,
    ...(metrics ? { events: metrics.workerEvents } : {}),
    ...(options.concurrency ? { concurrency: Number(options.concurrency) } : {}),
  });
  await stop.received;
  await worker.stop();
  await http?.close();
  metrics?.close();
  await app.close();
  unguard();
  return 0;
}

/** `gleaner sweep`: the scheduler only, or one tick per pipeline with --once. */
export async function sweepCommand(options: RunOptions & { once?: boolean }): Promise<number> {
  const stop = options.once ? undefined : watchStopSignals();
  const app = await openFromCli(options);
  stop?.attach(app.logger, () => app.database.stopEmbedded());
  try {
    if (!stop) {
      for (const { pipeline } of app.runtime.pipelines.values()) {
        const r = await sweepPipeline(app.database.db, app.config, pipeline);
        console.log(
          `pipeline ${r.pipeline}: enqueued ${r.claimed} rows in ${r.jobs} jobs (${r.durationMs.toFixed(1)} ms)`,
        );
      }
      return 0;
    }
    const unguard = surviveDatabaseOutages(app.logger);
    const scheduler = await startScheduler({
      db: app.database.db,
      pool: app.database.listenPool,
      config: app.config,
      pipelines: [...app.runtime.pipelines.values()].map((e) => e.pipeline),
      resolve: async (name) => (await app.runtime.ensurePipeline(name))?.pipeline,
      log: (m) => app.logger.warn(m),
      onSweep: sweeps(app, undefined),
    });
    await stop.received;
    await scheduler.stop();
    unguard();
    return 0;
  } finally {
    await app.close();
  }
}

/** `gleaner drain`: process everything due now, then exit. */
export async function drainCommand(options: RunOptions & { timeout?: string }): Promise<number> {
  const app = await openFromCli(options);
  try {
    const reporter = createProgressReporter();
    const result = await drain({
      runtime: app.runtime,
      url: app.database.url,
      logger: app.logger,
      ...(options.concurrency ? { concurrency: Number(options.concurrency) } : {}),
      ...(options.timeout ? { timeoutMs: Number(options.timeout) * 1000 } : {}),
      onProgress: (progress) => reporter.update(progress),
    });
    reporter.done();
    for (const p of result.progress)
      console.log(`${p.pipeline}: ${p.settled}/${p.total} rows settled`);
    if (result.timedOut) {
      console.error("drain: timed out with rows still in flight");
      return 1;
    }
    return 0;
  } finally {
    await app.close();
  }
}
