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
  /**
   * Starts a new runner, then stops the current one gracefully: its locks die with it, and the
   * jobs it still holds are given back by the reaper (no live process lists its pool any more).
   * Calls while a replacement is under way join it.
   */
  replace(reason: string): Promise<void>;
  /** Stops the current runner; no new one is started after this. */
  stop(): Promise<void>;
}

/** Pauses between attempts to start a runner: the database may be away a while. */
export const RESTART_DELAYS_MS: readonly number[] = [250, 500, 1000, 2000, 5000, 10_000];

/**
 * Keeps a graphile-worker runner running through database outages:
 * - whenever the current runner stops without being asked to (graphile-worker ends its pool when
 *   a worker fails fatally), `launch` is called again, with backoff while it fails (the database
 *   still away), until it succeeds or `stop()` is called;
 * - `replace()` swaps the runner for a new one, for when the current one may hold a job lock it
 *   lost track of (a job completion graphile-worker did not await, lost to the outage).
 */
export async function superviseRunner(
  launch: () => Promise<StoppableRunner>,
  options: {
    log: (message: string) => void;
    /** Runs after a new runner started (e.g. to register its pool at once). */
    onStarted?: () => Promise<void>;
    delaysMs?: readonly number[];
  },
): Promise<SupervisedRunner> {
  const delays = options.delaysMs ?? RESTART_DELAYS_MS;
  let runner = await launch();
  let restarting: string | undefined;
  let stopped = false;
  let replacing: Promise<void> | undefined;
  const sleepers = new Set<() => void>();

  const pause = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        sleepers.delete(done);
        resolve();
      }
      sleepers.add(done);
    });

  /** A new runner, tried with backoff; undefined when stopped meanwhile. */
  const launchPatiently = async (): Promise<StoppableRunner | undefined> => {
    for (let attempt = 0; !stopped; attempt++) {
      if (attempt > 0) await pause(delays[Math.min(attempt - 1, delays.length - 1)] ?? 10_000);
      if (stopped) return undefined;
      try {
        const next = await launch();
        if (stopped) {
          await next.stop();
          return undefined;
        }
        if (attempt > 0) options.log(`job runner started (after ${attempt + 1} attempts)`);
        return next;
      } catch (error) {
        if (attempt === 0 || attempt % 10 === 9)
          options.log(`job runner: cannot start one yet: ${coerceError(error).message}`);
      }
    }
    return undefined;
  };

  const adopt = async (next: StoppableRunner) => {
    runner = next;
    watch(next);
    await options
      .onStarted?.()
      .catch((error: unknown) =>
        options.log(`job runner: after its start: ${coerceError(error).message}`),
      );
  };

  const restart = async () => {
    restarting = "the job runner stopped and is being started again";
    options.log("job runner stopped; starting a new one");
    await pause(delays[0] ?? 250);
    const next = await launchPatiently();
    if (!next) return;
    restarting = undefined;
    await adopt(next);
  };

  const watch = (current: StoppableRunner) => {
    const settled = () => {
      if (!stopped && current === runner && !replacing) void restart();
    };
    current.promise.then(settled, settled);
  };
  watch(runner);

  return {
    notReady: () => restarting,
    replace(reason) {
      replacing ??= (async () => {
        options.log(`replacing the job runner: ${reason}`);
        const old = runner;
        const next = await launchPatiently();
        if (next) await adopt(next);
        // The old one finishes (or hands back) what it runs; its locks are released with it.
        await old.stop().catch((error: unknown) => {
          options.log(`old job runner stop: ${coerceError(error).message}`);
        });
      })().finally(() => {
        replacing = undefined;
      });
      return replacing;
    },
    async stop() {
      stopped = true;
      for (const wake of [...sleepers]) wake();
      await replacing;
      await runner.stop().catch((error: unknown) => {
        // Already stopped (its pool ended while the database was away): nothing to wait for.
        options.log(`job runner stop: ${coerceError(error).message}`);
      });
    },
  };
}
