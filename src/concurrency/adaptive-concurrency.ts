// The registry of a process's adaptive limits, one per endpoint, and the loop that shares them
// with the other Gleaner processes through <schema>.concurrency_limits: without it four workers
// would each send a provider the full limit, and each learn about its 429s on its own.
import type { Db } from "../db/connect-database.ts";
import { adjustConcurrencyLimits, type LimitChange } from "../sql/adjust-concurrency-limits.ts";
import { readConcurrencyLimits } from "../sql/read-concurrency-limits.ts";
import { registerConcurrencyLimits } from "../sql/register-concurrency-limits.ts";
import { systemClock, type Clock } from "../core/clock.ts";
import { createFailureLog } from "../core/failure-log.ts";
import { ALIVE_WITHIN_MS } from "../core/worker-liveness.ts";
import {
  AdaptiveLimiter,
  DEFAULT_TUNING,
  type LimitAdjustment,
  type LimiterBounds,
} from "./adaptive-limiter.ts";

/** A worker counts as sharing the limits while it is alive (src/core/worker-liveness.ts). */
const ALIVE_SECONDS = ALIVE_WITHIN_MS / 1000;

export interface AdaptiveConcurrencyOptions {
  /** Shares the limits through PostgreSQL; without it each process adapts its own limits. */
  db?: Db | undefined;
  /** Gleaner's schema, where concurrency_limits and workers live. Default "gleaner". */
  schema?: string | undefined;
  /**
   * How many processes share each limit. Default: the live workers in <schema>.workers (at least
   * 1), read at every sync.
   */
  processCount?: (() => number) | undefined;
  /** How often the shared rows are written and re-read. Default 1000 ms. */
  syncIntervalMs?: number | undefined;
  /** A window of calls with at least this success ratio raises a limit by 1. Default 0.95. */
  increaseAbove?: number | undefined;
  /** An overload (429, 503) multiplies a limit by this. Default 0.5. */
  decreaseFactor?: number | undefined;
  /** Told when a sync fails; the limiters go on with what they last knew. */
  log?: ((message: string) => void) | undefined;
  /** The limiters' clock (pauses); the system clock unless a test moves its own. */
  clock?: Clock | undefined;
}

/** One endpoint as /metrics shows it. */
export interface EndpointSnapshot {
  endpoint: string;
  /** Calls this process may have in flight: its share of the fleet-wide limit. */
  limit: number;
  globalLimit: number;
  inFlight: number;
  waiting: number;
  /** Overloads (429, 503) this process saw since it started. */
  throttleEvents: number;
  pausedForMs: number;
}

export interface AdaptiveConcurrency {
  /**
   * The limiter of an endpoint (`llm:<backend>`, `search:<provider>`, `host:<name>`, see
   * endpoint-key.ts), created on first use; later calls get the same one, whatever their bounds.
   */
  limiter(endpoint: string, bounds: LimiterBounds): AdaptiveLimiter;
  /** Starts the sync loop (a no-op without a database). */
  start(): void;
  /** Writes this process's changes and re-reads the shared rows now; rejects if that fails. */
  sync(): Promise<void>;
  /** Stops the loop, waits for a sync under way, and rejects anything still waiting for a slot. */
  stop(): Promise<void>;
  snapshot(): EndpointSnapshot[];
}

/**
 * @example
 * const concurrency = createAdaptiveConcurrency({ db, schema: "gleaner" });
 * const limiter = concurrency.limiter("llm:primary", { min: 1, max: 16 });
 * concurrency.start();
 * const release = await limiter.acquire(signal);
 * // ... call the endpoint, then:
 * release("success");
 * await concurrency.stop();
 */
export function createAdaptiveConcurrency(
  options: AdaptiveConcurrencyOptions = {},
): AdaptiveConcurrency {
  const { db, processCount, log } = options;
  const schema = options.schema ?? "gleaner";
  const clock = options.clock ?? systemClock;
  const intervalMs = options.syncIntervalMs ?? 1000;
  if (!Number.isFinite(intervalMs) || intervalMs <= 0)
    throw new Error(`syncIntervalMs must be a positive number of ms, got ${intervalMs}`);
  const tuning = {
    increaseAbove: options.increaseAbove ?? DEFAULT_TUNING.increaseAbove,
    decreaseFactor: options.decreaseFactor ?? DEFAULT_TUNING.decreaseFactor,
  };
  if (!(tuning.increaseAbove > 0 && tuning.increaseAbove <= 1))
    throw new Error(`increaseAbove must be in (0, 1], got ${tuning.increaseAbove}`);
  if (!(tuning.decreaseFactor > 0 && tuning.decreaseFactor < 1))
    throw new Error(`decreaseFactor must be in (0, 1), got ${tuning.decreaseFactor}`);

  const limiters = new Map<string, AdaptiveLimiter>();
  const bounds = new Map<string, Required<LimiterBounds>>();
  // Endpoints whose row this process has made sure exists.
  const registered = new Set<string>();
  let timer: NodeJS.Timeout | undefined;
  let running = false;
  // Syncs run one after another: a write and the read after it must not interleave with another.
  let queue: Promise<void> = Promise.resolve();
  // Once per outage: a missing migration would otherwise log every second.
  const syncFailures = createFailureLog(
    "concurrency limits: sync (using the last known limits meanwhile)",
    (m) => log?.(m),
  );

  async function syncOnce(database: Db): Promise<void> {
    const all = [...limiters.values()];
    if (all.length === 0) return;
    const unregistered = all.filter((l) => !registered.has(l.endpoint));
    await registerConcurrencyLimits(
      database,
      schema,
      unregistered.map((l) => ({
        endpoint: l.endpoint,
        ...(bounds.get(l.endpoint) as Required<LimiterBounds>),
      })),
    );
    for (const l of unregistered) registered.add(l.endpoint);

    const taken: [AdaptiveLimiter, LimitAdjustment][] = [];
    for (const l of all) {
      const adjustment = l.takeAdjustment();
      if (adjustment) taken.push([l, adjustment]);
    }
    try {
      const now = clock.now();
      await adjustConcurrencyLimits(
        database,
        schema,
        taken.map((t) => toChange(t, now)),
      );
    } catch (error) {
      for (const [l, adjustment] of taken) l.restoreAdjustment(adjustment);
      throw error;
    }

    const shared = await readConcurrencyLimits(
      database,
      schema,
      all.map((l) => l.endpoint),
      ALIVE_SECONDS,
    );
    const processes = processCount?.() ?? Math.max(1, shared.liveWorkers);
    for (const l of all) {
      const row = shared.limits.get(l.endpoint);
      // Deleted by hand (or never written): register it again on the next sync.
      if (!row) registered.delete(l.endpoint);
      else l.applyShared(row.globalLimit, row.pausedForMs, processes);
    }
  }

  function sync(): Promise<void> {
    if (!db) return Promise.resolve();
    const next = queue.then(() => syncOnce(db));
    queue = next.catch(() => {});
    return next;
  }

  function schedule(): void {
    timer = setTimeout(() => {
      timer = undefined;
      sync()
        .then(() => syncFailures.succeeded())
        .catch((error: unknown) => syncFailures.failed(error))
        .finally(() => {
          if (running) schedule();
        });
    }, intervalMs);
    // The loop alone must not keep a process alive.
    timer.unref();
  }

  return {
    limiter(endpoint, requested) {
      const known = limiters.get(endpoint);
      if (known) return known;
      const limiter = new AdaptiveLimiter(endpoint, requested, tuning, clock);
      limiters.set(endpoint, limiter);
      bounds.set(endpoint, {
        min: requested.min,
        max: requested.max,
        initial: requested.initial ?? requested.max,
      });
      return limiter;
    },
    start() {
      if (running || !db) return;
      running = true;
      schedule();
    },
    sync,
    async stop() {
      running = false;
      clearTimeout(timer);
      timer = undefined;
      await queue;
      for (const l of limiters.values()) l.close();
    },
    snapshot() {
      return [...limiters.values()].map((l) => ({
        endpoint: l.endpoint,
        limit: l.limit(),
        globalLimit: l.globalLimit(),
        inFlight: l.inFlight(),
        waiting: l.waiting(),
        throttleEvents: l.throttleEvents(),
        pausedForMs: l.pausedForMs(),
      }));
    },
  };
}

function toChange(
  [limiter, adjustment]: [AdaptiveLimiter, LimitAdjustment],
  now: number,
): LimitChange {
  return {
    endpoint: limiter.endpoint,
    decreaseTo: adjustment.decreaseTo ?? null,
    increase: adjustment.increase,
    pauseMs: Math.max(0, adjustment.pausedUntil - now),
  };
}
