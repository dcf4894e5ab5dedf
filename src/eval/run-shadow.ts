import { runMigrations } from "graphile-worker";
import { sql } from "kysely";
import type { Logger } from "pino";
import { Registry } from "prom-client";
import type { GleanerConfig, PipelineConfig } from "../config/config-types.ts";
import { coerceError } from "../core/coerce-error.ts";
import type { Database } from "../db/connect-database.ts";
import { startHttpServer } from "../http/start-http-server.ts";
import { createRuntime } from "../pipeline/runtime.ts";
import { ownCorpusPrefixes, servedCorpora } from "../search/corpus-folders.ts";
import { drain } from "../worker/drain.ts";
import type { GoldenRow } from "./golden-set.ts";
import { loadShadowTable, readShadowRows, shadowPipeline, type ShadowRow } from "./shadow-table.ts";

export interface ShadowRun {
  shadow: PipelineConfig;
  rows: ShadowRow[];
  wallMs: number;
  timedOut: boolean;
  /** What the run paid, from the cost ledger (LLM calls and paid searches). */
  paidUsd: number;
}

/**
 * The graphile-worker schema of eval jobs: a queue of their own, so a running `gleaner start`
 * never takes an eval's job (it does not know the shadow pipeline) and the eval's worker takes
 * none of the fleet's.
 */
export function evalWorkerSchema(config: GleanerConfig): string {
  return `${config.workerSchema}_eval`.slice(0, 63);
}

/**
 * Runs `pipeline` of `config` over the golden rows in a shadow table and drives them to a
 * settled state with the normal job code: the sweep's claim, graphile-worker jobs, the stage
 * machine, settling (src/worker/drain.ts), as `gleaner drain` does. Retries due later are not
 * waited for: a row that failed counts with what it has. LLM backends run live (an eval cannot
 * wait a day for the Batch API); answers come through the shared answer cache as in any run.
 * `database` is the main config's; `config` may be another (--against), run on the same database
 * and Gleaner schema.
 */
export async function runShadow(options: {
  database: Database;
  /** The main config: database, schema and queue. */
  main: GleanerConfig;
  /** The config whose pipeline runs (the main one, or --against). */
  config: GleanerConfig;
  pipeline: PipelineConfig;
  slot: "main" | "against";
  rows: readonly GoldenRow[];
  logger: Logger;
  timeoutMs?: number;
}): Promise<ShadowRun> {
  const { database, main, logger } = options;
  const schema = main.schema;
  const workerSchema = evalWorkerSchema(main);
  const shadow = shadowPipeline(options.pipeline, schema, options.slot);
  const shadowConfig: GleanerConfig = {
    ...options.config,
    databaseUrl: main.databaseUrl,
    schema,
    workerSchema,
    backends: options.config.backends.map((b) => ({ ...b, mode: "live" as const })),
    pipelines: [shadow],
  };
  return database.db.connection().execute(async (conn) => {
    // One eval of a pipeline at a time: a second would drop the first one's table.
    const lock = `gleaner:eval:${shadow.name}`;
    const { rows: got } = await sql<{ ok: boolean }>`
      select pg_try_advisory_lock(hashtext(${lock})) as ok`.execute(conn);
    if (!got[0]?.ok)
      throw new Error(
        `another gleaner eval of pipeline ${options.pipeline.name} is running on this database; wait for it to finish`,
      );
    try {
      await runMigrations({ pgPool: database.pool, schema: workerSchema });
      await loadShadowTable(database.db, shadow, schema, options.rows);
      const started = new Date();
      const runtime = await createRuntime(shadowConfig, database.db, {
        ownPrefixes: ownCorpusPrefixes(options.config),
      });
      runtime.events.on("research:warning", ({ message }) => logger.warn(message));
      const http = await serveCorpora(options.config, database, logger);
      try {
        const result = await drain({
          runtime,
          url: database.url,
          logger,
          only: [shadow.name],
          ...(options.timeoutMs ? { timeoutMs: options.timeoutMs } : {}),
          onProgress: (progress) => {
            for (const p of progress)
              logger.debug(`eval ${p.pipeline}: ${p.settled}/${p.total} rows settled`);
          },
        });
        const wallMs = Date.now() - started.getTime();
        const { rows: spent } = await sql<{ usd: number }>`
          select coalesce(sum(cost_usd), 0)::float8 as usd
          from ${sql.table(`${schema}.cost_ledger`)}
          where pipeline = ${shadow.name} and at >= ${started}`.execute(database.db);
        return {
          shadow,
          rows: await readShadowRows(database.db, shadow),
          wallMs,
          timedOut: result.timedOut,
          paidUsd: spent[0]?.usd ?? 0,
        };
      } finally {
        await http?.close();
        await runtime.research.close();
      }
    } finally {
      await sql`select pg_advisory_unlock(hashtext(${lock}))`.execute(conn);
    }
  });
}

/**
 * The corpus folders of `local` search providers are served by Gleaner itself on its HTTP
 * port, where the crawl reads them: the eval serves them for its run. When the port is taken
 * (a `gleaner start` of the same config serves them already), that process's pages are read.
 */
async function serveCorpora(config: GleanerConfig, database: Database, logger: Logger) {
  const corpora = servedCorpora(config);
  if (corpora.length === 0) return undefined;
  try {
    return await startHttpServer({
      host: config.http.host,
      port: config.http.port,
      registry: new Registry(),
      database,
      schema: config.schema,
      corpora,
    });
  } catch (error) {
    logger.warn(
      `cannot serve the corpus folders on ${config.http.host}:${config.http.port} (${coerceError(error).message}); reading them from the process serving that port`,
    );
    return undefined;
  }
}
