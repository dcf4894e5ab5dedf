import { spawn, type ChildProcess } from "node:child_process";

/**
 * A Gleaner command run as a real process, the way an operator runs it: its output collected,
 * its exit awaited, and signals sent to it (or to its whole process group, as a terminal does).
 */
export interface GleanerProcess {
  readonly child: ChildProcess;
  /** stdout and stderr so far, interleaved. */
  output(): string;
  stdout(): string;
  alive(): boolean;
  /** Resolves with the exit code (or the signal's name). */
  exited(): Promise<number | string>;
  /** Sends a signal to the process, or with `group` to its process group (Ctrl-C, hang-up). */
  signal(signal: NodeJS.Signals, group?: boolean): void;
  /** SIGKILL unless already gone, then waits for the exit. */
  kill(): Promise<void>;
}

export function spawnGleaner(
  args: readonly string[],
  options: { env?: NodeJS.ProcessEnv; cwd?: string; detached?: boolean } = {},
): GleanerProcess {
  const child = spawn(process.execPath, ["bin/gleaner.js", ...args], {
    cwd: options.cwd ?? process.cwd(),
    env: { ...process.env, GLEANER_LOG_LEVEL: "info", ...options.env },
    stdio: ["ignore", "pipe", "pipe"],
    // Its own process group, so a group signal reaches it and its children only.
    detached: options.detached ?? false,
  });
  let all = "";
  let out = "";
  child.stdout?.on("data", (d: Buffer) => {
    all += d.toString();
    out += d.toString();
  });
  child.stderr?.on("data", (d: Buffer) => (all += d.toString()));
  const exit = new Promise<number | string>((resolve) =>
    child.once("exit", (code, signal) => resolve(code ?? signal ?? "unknown")),
  );
  return {
    child,
    output: () => all,
    stdout: () => out,
    alive: () => child.exitCode === null && child.signalCode === null,
    exited: () => exit,
    signal(signal, group = false) {
      if (group && child.pid) process.kill(-child.pid, signal);
      else child.kill(signal);
    },
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      await exit;
    },
  };
}

/** Polls until `check` returns a value other than undefined/false, or throws at the deadline. */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 60_000,
  everyMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
