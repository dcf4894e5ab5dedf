import { spawn, type ChildProcess } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "./postgres-cluster.ts";

/** Debian's PgBouncer (the `pgbouncer` package, 1.18), run by a test on a loopback port. */
export interface PgBouncer {
  /** The URL of `database` through the pooler. */
  url(database: string): string;
  port: number;
  log(): string;
  stop(): Promise<void>;
}

/**
 * Starts PgBouncer in transaction mode in front of the server at `upstream` (host:port), with a
 * small server pool so that consecutive transactions of one client land on different server
 * connections: any session state or named prepared statement would then be lost and show up.
 */
export async function startPgBouncer(options: {
  upstream: { host: string; port: number; user: string };
  poolSize: number;
}): Promise<PgBouncer> {
  const dir = mkdtempSync(join(tmpdir(), "gleaner-pgbouncer-"));
  // PgBouncer refuses to run as root; it drops to `postgres`, who must read and write here.
  chmodSync(dir, 0o777);
  const port = await freePort();
  const ini = join(dir, "pgbouncer.ini");
  const logfile = join(dir, "pgbouncer.log");
  writeFileSync(join(dir, "userlist.txt"), `"${options.upstream.user}" ""\n`);
  writeFileSync(
    ini,
    [
      "[databases]",
      `* = host=${options.upstream.host} port=${options.upstream.port}`,
      "[pgbouncer]",
      "listen_addr = 127.0.0.1",
      `listen_port = ${port}`,
      "unix_socket_dir =",
      "auth_type = trust",
      `auth_file = ${join(dir, "userlist.txt")}`,
      "pool_mode = transaction",
      `default_pool_size = ${options.poolSize}`,
      "max_client_conn = 500",
      "ignore_startup_parameters = extra_float_digits",
      `logfile = ${logfile}`,
      "",
    ].join("\n"),
  );
  const asRoot = process.getuid?.() === 0;
  const child: ChildProcess = spawn(
    "/usr/sbin/pgbouncer",
    [...(asRoot ? ["-u", "postgres"] : []), ini],
    {
      stdio: ["ignore", "ignore", "pipe"],
    },
  );
  let stderr = "";
  child.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const log = () => {
    try {
      return readFileSync(logfile, "utf8") + stderr;
    } catch {
      // No log file yet: PgBouncer has not started writing.
      return stderr;
    }
  };
  await waitForPort(port, () => child.exitCode !== null, log);
  return {
    port,
    url: (database) => `postgres://${options.upstream.user}@127.0.0.1:${port}/${database}`,
    log,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function waitForPort(port: number, dead: () => boolean, log: () => string): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect(port, "127.0.0.1");
      socket.once("connect", () => {
        socket.destroy();
        resolve(true);
      });
      socket.once("error", () => resolve(false));
    });
    if (open) return;
    if (dead() || Date.now() > deadline)
      throw new Error(`pgbouncer did not start on 127.0.0.1:${port}: ${log()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
