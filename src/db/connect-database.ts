import { connectionBudget } from "./connection-budget.ts";
import { Kysely, PostgresDialect } from "kysely";
import pg from "pg";
import { ignoreReportedElsewhere } from "./pool-errors.ts";
import type { GleanerConfig } from "../config/config-types.ts";
import { coerceError } from "../core/coerce-error.ts";
import { maskSecrets, maskUrl, urlCredentials } from "../core/mask-secrets.ts";
import type { GleanerDatabase } from "./database-types.ts";
import { startEmbeddedDatabase } from "./embedded-database.ts";
import { gleanerTypes } from "./gleaner-types.ts";

export type Db = Kysely<GleanerDatabase>;

export interface Database {
  db: Db;
  pool: pg.Pool;
  /**
   * One connection, opened only when something LISTENs: to `listen_url` when set (a direct
   * connection beside a transaction pooler, which does not pass notifications on), else `url`.
   */
  listenPool: pg.Pool;
  url: string;
  /** A human-readable line saying which database this is, password masked. */
  description: string;
  /** True when the embedded default is in use (its local credentials are no secret). */
  embedded: boolean;
  close(): Promise<void>;
  /** Stops the embedded server now, when this process owns it (a forced exit); else nothing. */
  stopEmbedded(): Promise<void>;
}

/** Picks the database: config database_url, then DATABASE_URL, then the embedded default. */
export async function connectDatabase(
  config: GleanerConfig,
  options: { env?: NodeJS.ProcessEnv; poolSize?: number; log?: (line: string) => void } = {},
): Promise<Database> {
  const env = options.env ?? process.env;
  let url = config.databaseUrl ?? env.DATABASE_URL;
  let description: string;
  let stopEmbedded = async () => {};
  const embedded = !url;
  if (url) {
    description = `database ${maskUrl(url)}`;
  } else {
    const server = await startEmbeddedDatabase({ ...config.embedded, log: options.log });
    url = server.url;
    stopEmbedded = once(() => server.stop());
    description = `embedded PostgreSQL in ${config.embedded.dataDir} (${maskUrl(url)}${server.startedHere ? "" : ", already running"}); set DATABASE_URL to use another server`;
  }
  const pool = new pg.Pool({
    connectionString: url,
    max: options.poolSize ?? connectionBudget(config.worker.concurrency).main,
    types: gleanerTypes,
    // Named, so pg_stat_activity (and a pooler's SHOW CLIENTS) attribute the connection.
    application_name: APPLICATION_NAMES.main,
  });
  watchPool(pool, "database pool", options.log);
  const listenPool = new pg.Pool({
    connectionString: config.listenUrl ?? url,
    max: 1,
    application_name: APPLICATION_NAMES.listen,
  });
  watchPool(listenPool, "listen connection", options.log);
  try {
    const client = await pool.connect();
    client.release();
  } catch (error) {
    await pool.end();
    await listenPool.end();
    await stopEmbedded();
    // The driver's message may quote parts of a malformed URL: mask what the URL holds.
    const reason = maskSecrets(coerceError(error).message, [url, ...urlCredentials(url)]);
    throw new Error(
      `cannot connect to ${description}: ${reason}. Check DATABASE_URL and that the server is running.`,
      { cause: error },
    );
  }
  const db = new Kysely<GleanerDatabase>({ dialect: new PostgresDialect({ pool }) });
  return {
    db,
    pool,
    listenPool,
    url,
    description,
    embedded,
    stopEmbedded,
    close: async () => {
      await db.destroy();
      // Kysely ends the pool only if it ever used it; a caller that only used `pool` must not leak it.
      if (!pool.ended) await pool.end();
      if (!listenPool.ended) await listenPool.end();
      await stopEmbedded();
    },
  };
}

/**
 * The application_name of each of a process's pools, so the connection budget (README "Scaling
 * out") can be read from pg_stat_activity. graphile-worker's pool is src/worker/start-worker.ts.
 */
export const APPLICATION_NAMES = {
  main: "gleaner",
  listen: "gleaner-listen",
  worker: "gleaner-worker",
} as const;

function watchPool(pool: pg.Pool, what: string, log: ((line: string) => void) | undefined): void {
  // An idle client losing its connection must not crash the process; the pool replaces it.
  pool.on("error", (error) => log?.(`${what}: ${error.message}`));
  // A client's 'error' needs a listener, or it ends the process. It is said once already: by
  // the pool's 'error' for an idle client, by the failed query for one in use.
  pool.on("connect", (client) => client.on("error", ignoreReportedElsewhere));
}

/** A function that runs its body once; later calls share the first call's promise. */
function once(fn: () => Promise<void>): () => Promise<void> {
  let result: Promise<void> | undefined;
  return () => (result ??= fn());
}
