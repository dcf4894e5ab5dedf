import { coerceError } from "../core/coerce-error.ts";

/** What supervision needs of a graphile-worker Runner. */
export interface StoppableRunner {
  /** Settles when the runner has stopped, for whatever reason. */
  readonly promise: Promise<void>;
  stop(): Promise<void>;
}

export interface SupervisedRunner {
  /** Why no runner is running right now (it is being started again), or undefined. */
  notReady(): string | undefined;
  /** Stops the current runner; no new one is started after this. */
  stop(): Promise<void>;
}

/** Pauses between attempts to bring a stopped runner back: the database may be away a while. */
export const RESTART_DELAYS_MS: readonly number[] = [250, 500, 1000, 2000, 5000, 10_000];

/**
 * Keeps a runner running. graphile-worker stops its worker pool when it cannot complete or fail
 * jobs (the database away for minutes), and a process that must outlive the outage needs a new
 * one: whenever the current runner stops without being asked to, `launch` is called again, with
 * backoff while it fails (the database still away), until it succeeds or `stop()` is called.
 */
export async function superviseRunner(
  launch: () => Promise<StoppableRunner>,
  options: {
    log: (message: string) => void;
    /** Runs after a new runner started (e.g. to register its pool at once). */
    onRestarted?: () => Promise<void>;
    delaysMs?: readonly number[];
  },
): Promise<SupervisedRunner> {
  const delays = options.delaysMs ?? RESTART_DELAYS_MS;
  let runner = await launch();
  let restarting: string | undefined;
  let stopped = false;
  let wake: (() => void) | undefined;

  const pause = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        wake = undefined;
        resolve();
      }
      wake = done;
    });

  const restart = async () => {
    restarting = "the job runner stopped and is being started again";
    options.log("job runner stopped; starting it again");
    for (let attempt = 0; !stopped; attempt++) {
      await pause(delays[Math.min(attempt, delays.length - 1)] ?? 10_000);
      if (stopped) return;
      try {
        runner = await launch();
      } catch (error) {
        if (attempt === 0 || attempt % 10 === 9)
          options.log(`job runner: cannot start it yet: ${coerceError(error).message}`);
        continue;
      }
      if (stopped) {
        await runner.stop();
        return;
      }
      restarting = undefined;
      options.log(`job runner running again (after ${attempt + 1} attempt(s))`);
      watch(runner);
      await options
        .onRestarted?.()
        .catch((error: unknown) =>
          options.log(`job runner: after restart: ${coerceError(error).message}`),
        );
      return;
    }
  };
  const watch = (current: StoppableRunner) => {
    const settled = () => {
      if (!stopped && current === runner) void restart();
    };
    current.promise.then(settled, settled);
  };
  watch(runner);

  return {
    notReady: () => restarting,
    async stop() {
      stopped = true;
      wake?.();
      await runner.stop().catch((error: unknown) => {
        // Already stopped (its pool ended while the database was away): nothing to wait for.
        options.log(`job runner stop: ${coerceError(error).message}`);
      });
    },
  };
}
