import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";

/**
 * A crawling process of a fleet (fleet-reader-process.ts) run as a real child process: commands
 * go in on stdin, each answered by its page lines and a `done` line with the round trips its
 * politeness sent.
 */

export interface FleetReaderSettings {
  databaseUrl: string;
  schema: string;
  concurrency: number;
  delayMs: number;
  leaseMs?: number;
  failureThreshold?: number;
  coolDownMs?: number;
  timeoutMs?: number;
}

export interface PageLine {
  url: string;
  ok: boolean;
  errorClass?: string;
  at?: number;
}

export interface CommandResult {
  pages: PageLine[];
  done: number;
  roundTrips: number;
}

export interface FleetReader {
  readonly child: ChildProcess;
  read(urls: readonly string[], parallel?: number): Promise<CommandResult>;
  loop(prefix: string, parallel: number, forMs: number): Promise<CommandResult>;
  kill(): Promise<void>;
  /** Ends stdin and waits for a clean exit. */
  close(): Promise<void>;
}

const SCRIPT = fileURLToPath(new URL("./fleet-reader-process.ts", import.meta.url));

export async function startFleetReader(settings: FleetReaderSettings): Promise<FleetReader> {
  const child = spawn(process.execPath, ["--import", "tsx", SCRIPT, JSON.stringify(settings)], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  let buffer = "";
  let pending: PageLine[] = [];
  const waiting: ((line: Record<string, unknown>) => void)[] = [];
  let ready: () => void = () => {};
  const readyPromise = new Promise<void>((resolve) => (ready = resolve));
  child.stdout?.on("data", (data: Buffer) => {
    buffer += data.toString();
    for (let nl = buffer.indexOf("\n"); nl !== -1; nl = buffer.indexOf("\n")) {
      const line = JSON.parse(buffer.slice(0, nl)) as Record<string, unknown>;
      buffer = buffer.slice(nl + 1);
      if (line.ready) ready();
      else if (line.done !== undefined) waiting.shift()?.(line);
      else pending.push(line as unknown as PageLine);
    }
  });
  await Promise.race([
    readyPromise,
    exited.then(() => {
      throw new Error("the fleet reader process exited before it was ready");
    }),
  ]);

  const send = (command: object): Promise<CommandResult> =>
    new Promise((resolve) => {
      waiting.push((line) => {
        const pages = pending;
        pending = [];
        resolve({ pages, done: line.done as number, roundTrips: line.roundTrips as number });
      });
      child.stdin?.write(`${JSON.stringify(command)}\n`);
    });

  return {
    child,
    read: (urls, parallel = 1) => send({ read: urls, parallel }),
    loop: (prefix, parallel, forMs) => send({ loop: prefix, parallel, forMs }),
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      await exited;
    },
    async close() {
      child.stdin?.end();
      await exited;
    },
  };
}
