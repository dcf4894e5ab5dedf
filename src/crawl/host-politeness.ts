import { setTimeout as sleep } from "node:timers/promises";
import { coerceError } from "../core/coerce-error.ts";
import { CrawlError, findCrawlError } from "./crawl-error.ts";

/**
 * Per-host manners: at most `concurrency` requests in flight to one host, starts spaced by at
 * least `delayMs` (or the robots crawl-delay when larger), a host that answered 429 / Retry-After
 * left alone until then, and a circuit breaker so a host that keeps failing costs one fast error
 * per call instead of a timeout each, until its cool-down is over.
 */

export interface HostPolitenessOptions {
  /** Requests in flight per host. Default 2. */
  concurrency?: number;
  /** Minimum time between the starts of two requests to one host. Default 500 ms. */
  delayMs?: number;
  /** Consecutive failures that open the circuit. Default 5. */
  failureThreshold?: number;
  /** How long an open circuit refuses calls before letting one trial through. Default 60 s. */
  coolDownMs?: number;
  /** Pause after a 429 without Retry-After. Default 30 s. */
  defaultRetryAfterMs?: number;
  /** Which errors count against the host. Default: transient network and server failures. */
  isHostFailure?: (error: unknown) => boolean;
  now?: () => number;
}

export interface ScheduleOptions {
  /** This call's spacing when larger than the default (robots crawl-delay). */
  delayMs?: number;
  /** Stops waiting for a slot or a turn (a row's row_timeout); the task itself gets it too. */
  signal?: AbortSignal | undefined;
}

export interface HostPoliteness {
  /** Runs `task` when the host's limits allow; fails fast with `circuit_open` while it is open. */
  schedule<T>(host: string, task: () => Promise<T>, options?: ScheduleOptions): Promise<T>;
  /** Leaves the host alone until `untilMs` (epoch ms). */
  pause(host: string, untilMs: number): void;
  state(host: string): HostSnapshot;
}

export interface HostSnapshot {
  inFlight: number;
  queued: number;
  consecutiveFailures: number;
  circuit: "closed" | "open" | "half_open";
  pausedUntil: number;
}

interface HostState {
  active: number;
  waiters: (() => void)[];
  nextStartAt: number;
  /** When the last call actually started. */
  lastStartAt: number;
  pausedUntil: number;
  failures: number;
  openUntil: number;
  /** A trial call is running after the cool-down; others still fail fast until it ends. */
  trialRunning: boolean;
}

const HOST_FAILURE_CLASSES = new Set(["timeout", "connection", "http_5xx"]);

export function defaultIsHostFailure(error: unknown): boolean {
  const crawlError = findCrawlError(error);
  return crawlError !== undefined && HOST_FAILURE_CLASSES.has(crawlError.errorClass);
}

/** What a failed call means for its host: a pause (429, or a 5xx with Retry-After), a failure. */
export interface PolitenessVerdict {
  /** Leave the host alone this long from now; 0 for no pause. */
  pauseMs: number;
  /** Counts against the circuit breaker. */
  hostFailure: boolean;
}

/** One reading of a failed call for both the per-process and the fleet-wide politeness. */
export function politenessVerdict(
  error: unknown,
  isHostFailure: (error: unknown) => boolean,
  defaultRetryAfterMs: number,
): PolitenessVerdict {
  const crawlError = findCrawlError(error);
  let pauseMs = 0;
  if (crawlError?.errorClass === "rate_limited") {
    pauseMs = crawlError.retryAfterMs ?? defaultRetryAfterMs;
  } else if (crawlError?.retryAfterMs !== undefined && crawlError.errorClass === "http_5xx") {
    pauseMs = crawlError.retryAfterMs;
  }
  return {
    pauseMs,
    hostFailure: crawlError?.errorClass !== "circuit_open" && isHostFailure(error),
  };
}

export function createHostPoliteness(options: HostPolitenessOptions = {}): HostPoliteness {
  const concurrency = options.concurrency ?? 2;
  const baseDelayMs = options.delayMs ?? 500;
  const failureThreshold = options.failureThreshold ?? 5;
  const coolDownMs = options.coolDownMs ?? 60_000;
  const defaultRetryAfterMs = options.defaultRetryAfterMs ?? 30_000;
  const isHostFailure = options.isHostFailure ?? defaultIsHostFailure;
  const now = options.now ?? Date.now;
  const hosts = new Map<string, HostState>();

  function stateOf(host: string): HostState {
    let state = hosts.get(host);
    if (!state) {
      state = {
        active: 0,
        waiters: [],
        nextStartAt: 0,
        lastStartAt: Number.NEGATIVE_INFINITY,
        pausedUntil: 0,
        failures: 0,
        openUntil: 0,
        trialRunning: false,
      };
      hosts.set(host, state);
    }
    return state;
  }

  /**
   * Throws circuit_open when the breaker refuses. With `claimTrial`, a call let through after the
   * cool-down becomes the one trial (returns true); without it, this is only a fast pre-check.
   */
  function admit(host: string, state: HostState, claimTrial: boolean): boolean {
    if (state.failures < failureThreshold) return false;
    const t = now();
    if (t < state.openUntil || state.trialRunning) {
      const retryAfterMs = Math.max(0, state.openUntil - t);
      throw new CrawlError(
        "circuit_open",
        `${host} failed ${state.failures} times in a row; not asking it again for ${Math.ceil(retryAfterMs / 1000)} s`,
        { url: `//${host}`, retryAfterMs },
      );
    }
    if (claimTrial) state.trialRunning = true;
    return claimTrial;
  }

  async function acquire(state: HostState, signal: AbortSignal | undefined): Promise<void> {
    signal?.throwIfAborted();
    if (state.active < concurrency) {
      state.active++;
      return;
    }
    // release() hands its slot straight to the first waiter, so `active` is not touched here.
    // A waiter that gives up leaves the queue, so no slot is handed to it.
    await new Promise<void>((resolve, reject) => {
      const waiter = () => {
        signal?.removeEventListener("abort", onAbort);
        resolve();
      };
      const onAbort = () => {
        const index = state.waiters.indexOf(waiter);
        if (index !== -1) state.waiters.splice(index, 1);
        reject(coerceError(signal?.reason));
      };
      state.waiters.push(waiter);
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  function release(state: HostState): void {
    const next = state.waiters.shift();
    if (next) next();
    else state.active--;
  }

  async function waitTurn(
    state: HostState,
    delayMs: number,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    // Reserve a start time now, so waiters queue up delayMs apart instead of all at once.
    const startAt = Math.max(now(), state.nextStartAt);
    state.nextStartAt = startAt + delayMs;
    let wait = startAt - now();
    if (wait > 0) await sleep(wait, undefined, { signal });
    // Timers fire late under load, and an earlier waiter woken late would leave less than
    // delayMs before this one: space the actual starts, not only the reserved ones. A pause
    // (Retry-After) may also have arrived while we waited.
    for (;;) {
      wait = Math.max(state.lastStartAt + delayMs, state.pausedUntil) - now();
      if (wait <= 0) break;
      await sleep(wait, undefined, { signal });
    }
    // No await between the last check and this: two waiters cannot both pass it.
    state.lastStartAt = now();
  }

  async function schedule<T>(
    host: string,
    task: () => Promise<T>,
    scheduleOptions: ScheduleOptions = {},
  ): Promise<T> {
    const state = stateOf(host);
    admit(host, state, false);
    await acquire(state, scheduleOptions.signal);
    let trial = false;
    try {
      // The circuit may have opened while this call queued: decide again with the slot held.
      trial = admit(host, state, true);
      await waitTurn(
        state,
        Math.max(baseDelayMs, scheduleOptions.delayMs ?? 0),
        scheduleOptions.signal,
      );
      const result = await task();
      state.failures = 0;
      return result;
    } catch (error) {
      const verdict = politenessVerdict(error, isHostFailure, defaultRetryAfterMs);
      if (verdict.pauseMs > 0) pause(host, now() + verdict.pauseMs);
      if (verdict.hostFailure) {
        state.failures++;
        if (state.failures >= failureThreshold) state.openUntil = now() + coolDownMs;
      }
      throw error;
    } finally {
      if (trial) state.trialRunning = false;
      release(state);
    }
  }

  function pause(host: string, untilMs: number): void {
    const state = stateOf(host);
    state.pausedUntil = Math.max(state.pausedUntil, untilMs);
  }

  return {
    schedule,
    pause,
    state: (host) => {
      const state = stateOf(host);
      const t = now();
      const circuit =
        state.failures < failureThreshold
          ? "closed"
          : t < state.openUntil || state.trialRunning
            ? "open"
            : "half_open";
      return {
        inFlight: state.active,
        queued: state.waiters.length,
        consecutiveFailures: state.failures,
        circuit,
        pausedUntil: state.pausedUntil,
      };
    },
  };
}
