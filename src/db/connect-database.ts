import { Kysely, PostgresDialect } from "kysely";
import pg from "pg";
import type { GleanerConfig } from "../config/config-types.ts";
import { coerceError } from "../core/coerce-error.ts";
import { maskSecrets, maskUrl, urlCredentials } from "../core/mask-secrets.ts";
import type { GleanerDatabase } from "./database-types.ts";
import { startEmbeddedDatabase } from "./embedded-database.ts";

export type Db = Kysely<GleanerDatabase>;

export interface Database {
  db: Db;
  pool: pg.Pool;
  url: string;
  /** A human-readable line saying which database this is, password masked. */
  description: string;
  close(): Promise<void>;
}

// Bigint counts come back as strings by default; Gleaner's counts fit in a double.
pg.types.setTypeParser(20, (v) => Number(v));

/** Picks the database: config database_url, then DATABASE_URL, then the embedded default. */
export async function connectDatabase(
  config: GleanerConfig,
  options: { env?: NodeJS.ProcessEnv; poolSize?: number; log?: (line: string) => void } = {},
): Promise<Database> {
  const env = options.env ?? process.env;
  let url = config.databaseUrl ?? env.DATABASE_URL;
  let description: string;
  let stopEmbedded = async () => {};
  if (url) {
    description = `database ${maskUrl(url)}`;
  } else {
    const embedded = await startEmbeddedDatabase({ ...config.embedded, log: options.log });
    url = embedded.url;
    stopEmbedded = () => embedded.stop();
    description = `embedded PostgreSQL in ${config.embedded.dataDir} (${maskUrl(url)}${embedded.startedHere ? "" : ", already running"}); set DATABASE_URL to use another server`;
  }
  const pool = new pg.Pool({ connectionString: url, max: options.poolSize ?? 10 });
  // An idle client losing its connection must not crash the process; the pool replaces it.
  pool.on("error", (error) => options.log?.(`database pool: ${error.message}`));
  pool.on("connect", (client) => {
    client.on("error", (error) => options.log?.(`database connection: ${error.message}`));
  });
  try {
    const client = await pool.connect();
    client.release();
  } catch (error) {
    await pool.end();
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
    url,
    description,
    close: async () => {
      await db.destroy();
      // Kysely ends the pool only if it ever used it; a caller that only used `pool` must not leak it.
      if (!pool.ended) await pool.end();
      await stopEmbedded();
    },
  };
}
