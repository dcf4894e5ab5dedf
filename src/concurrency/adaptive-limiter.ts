// One endpoint's adaptive concurrency limit: a FIFO semaphore (as src/llm/concurrency-limit.ts)
// whose size follows what the endpoint says about its load, the way TCP sizes its congestion
// window: additive increase while calls succeed, multiplicative decrease when the endpoint pushes
// back. A fixed limit is either too low for a healthy provider or too high for a throttled one.
import { systemClock, type Clock } from "../core/clock.ts";
import type { CallOutcome, CallVerdict, ReleaseSlot } from "./call-outcome.ts";
import { processShare } from "./process-share.ts";

export interface LimiterBounds {
  /** The lowest the fleet-wide limit goes; at least 1. */
  min: number;
  /** The highest the fleet-wide limit goes. */
  max: number;
  /** Where the limit starts; defaults to `max` (an endpoint is assumed healthy until it says no). */
  initial?: number | undefined;
}

export interface AimdTuning {
  /** A window of calls with at least this success ratio raises the limit by 1. */
  increaseAbove: number;
  /** An overload (429, 503) multiplies the limit by this. */
  decreaseFactor: number;
}

export const DEFAULT_TUNING: AimdTuning = { increaseAbove: 0.95, decreaseFactor: 0.5 };

/**
 * A window where errors (timeouts, 5xx, lost connections) outnumber successes multiplies the
 * limit by this: gentler than an overload, because an error may be the request's own fault, and
 * a single one (or a few) changes nothing.
 */
export const ERROR_DECREASE_FACTOR = 0.75;

/** Retry-After beyond this is cut to it, so one odd header cannot stall an endpoint for a day. */
export const MAX_PAUSE_MS = 5 * 60_000;

/** What this process changed since the last write to the shared row (src/concurrency/). */
export interface LimitAdjustment {
  /** The lowest fleet-wide limit asked for; applied before `increase`. */
  decreaseTo: number | undefined;
  /** Additive increases earned since, each +1. */
  increase: number;
  /** Clock time (ms since the epoch) until which the endpoint is paused; 0 for no pause. */
  pausedUntil: number;
}

interface Waiter {
  grant: () => void;
  reject: (error: Error) => void;
}

function abortReason(signal: AbortSignal): Error {
  return signal.reason instanceof Error
    ? signal.reason
    : new DOMException("aborted while waiting for a free slot", "AbortError");
}

function checkBounds(endpoint: string, bounds: LimiterBounds): void {
  const { min, max, initial = max } = bounds;
  const ok = [min, max, initial].every((n) => Number.isInteger(n) && n >= 1);
  if (!ok || min > max || initial < min || initial > max) {
    throw new Error(
      `concurrency limit of ${endpoint}: need positive integers with min <= initial <= max, got min ${min}, initial ${initial}, max ${max}`,
    );
  }
}

/**
 * Use through `acquire`/`release` or `run`. Without a registry (src/concurrency/
 * adaptive-concurrency.ts) the limit is this process's alone; with one, it is a fleet-wide limit
 * of which this process uses its share, and the registry's sync calls `takeAdjustment` and
 * `applyShared`.
 *
 * @example
 * const limiter = new AdaptiveLimiter("search:web", { min: 1, max: 8 });
 * const release = await limiter.acquire(signal);
 * const response = await fetch(url);
 * release(response.status === 429 ? "overload" : "success", retryAfterMs(response));
 */
export class AdaptiveLimiter {
  readonly endpoint: string;
  readonly min: number;
  readonly max: number;
  readonly #tuning: AimdTuning;
  /** The fleet-wide limit as this process knows it (its own limit when nothing is shared). */
  #global: number;
  #processes = 1;
  #active = 0;
  readonly #queue: Waiter[] = [];
  #pausedUntil = 0;
  #cancelPauseTimer: (() => void) | undefined;
  readonly #clock: Clock;
  #throttleEvents = 0;
  // The current window: `#windowSize` judged calls (success or error), sized by the limit when
  // it opened, so the limit grows by at most 1 per limit's worth of calls.
  #windowSize: number;
  #successes = 0;
  #errors = 0;
  #pending: LimitAdjustment = { decreaseTo: undefined, increase: 0, pausedUntil: 0 };

  constructor(
    endpoint: string,
    bounds: LimiterBounds,
    tuning: AimdTuning = DEFAULT_TUNING,
    clock: Clock = systemClock,
  ) {
    checkBounds(endpoint, bounds);
    this.#clock = clock;
    this.endpoint = endpoint;
    this.min = bounds.min;
    this.max = bounds.max;
    this.#tuning = tuning;
    this.#global = bounds.initial ?? bounds.max;
    this.#windowSize = this.#global;
  }

  /** Calls this process may have in flight now: its share of the fleet-wide limit. */
  limit(): number {
    return processShare(this.#global, this.#processes);
  }

  /** The fleet-wide limit as last known (this process's own limit when nothing is shared). */
  globalLimit(): number {
    return this.#global;
  }

  inFlight(): number {
    return this.#active;
  }

  waiting(): number {
    return this.#queue.length;
  }

  /** Overloads (429, 503) seen by this process since it started. */
  throttleEvents(): number {
    return this.#throttleEvents;
  }

  /** Milliseconds until the endpoint's Retry-After pause ends; 0 when not paused. */
  pausedForMs(): number {
    return Math.max(0, this.#pausedUntil - this.#clock.now());
  }

  /**
   * Resolves with the release function once a slot is free and no Retry-After pause is on;
   * waiters are served first come, first served. Rejects if `signal` aborts first.
   */
  acquire(signal?: AbortSignal): Promise<ReleaseSlot> {
    if (signal?.aborted) return Promise.reject(abortReason(signal));
    if (this.#queue.length === 0 && this.#hasRoom()) {
      this.#active++;
      return Promise.resolve(this.#releaser());
    }
    return new Promise<ReleaseSlot>((resolve, reject) => {
      const onAbort = (): void => {
        const index = this.#queue.indexOf(waiter);
        if (index !== -1) this.#queue.splice(index, 1);
        reject(abortReason(signal as AbortSignal));
      };
      const waiter: Waiter = {
        grant: () => {
          signal?.removeEventListener("abort", onAbort);
          resolve(this.#releaser());
        },
        reject: (error) => {
          signal?.removeEventListener("abort", onAbort);
          reject(error);
        },
      };
      this.#queue.push(waiter);
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#armPauseTimer();
    });
  }

  /**
   * Runs `fn` in a slot. A resolved `fn` is a success; a thrown error is judged by `classify`.
   * Callers whose `fn` resolves with an overload (a fetch Response with status 429) should use
   * `acquire` and release with the right outcome instead.
   */
  async run<T>(
    fn: () => Promise<T>,
    classify: (error: unknown) => CallVerdict,
    signal?: AbortSignal,
  ): Promise<T> {
    const release = await this.acquire(signal);
    let value: T;
    try {
      value = await fn();
    } catch (error) {
      const verdict = classify(error);
      release(verdict.outcome, verdict.retryAfterMs);
      throw error;
    }
    release("success");
    return value;
  }

  /** @internal For the registry's sync: what to write to the shared row, cleared once taken. */
  takeAdjustment(): LimitAdjustment | undefined {
    const taken = this.#pending;
    this.#pending = { decreaseTo: undefined, increase: 0, pausedUntil: 0 };
    const empty =
      taken.decreaseTo === undefined &&
      taken.increase === 0 &&
      taken.pausedUntil <= this.#clock.now();
    return empty ? undefined : taken;
  }

  /** @internal For the registry's sync: puts back an adjustment whose write failed. */
  restoreAdjustment(older: LimitAdjustment): void {
    const pending = this.#pending;
    // The older one happened first: a decrease since then voids its increases, as in #decrease.
    if (pending.decreaseTo === undefined) {
      pending.decreaseTo = older.decreaseTo;
      pending.increase += older.increase;
    } else {
      pending.decreaseTo = minDefined(older.decreaseTo, pending.decreaseTo);
    }
    pending.pausedUntil = Math.max(pending.pausedUntil, older.pausedUntil);
  }

  /**
   * @internal For the registry's sync: the shared row as just read, and the processes sharing
   * it. Changes made here since the last write are applied on top, so a read that raced with an
   * overload does not undo it.
   */
  applyShared(globalLimit: number, pausedForMs: number, processes: number): void {
    const { decreaseTo, increase } = this.#pending;
    this.#global = this.#clamp(Math.min(globalLimit, decreaseTo ?? globalLimit) + increase);
    this.#processes = Math.max(1, processes);
    if (pausedForMs > 0) this.#pauseUntil(this.#clock.now() + pausedForMs);
    this.#drain();
  }

  /** Rejects every waiter and clears the pause timer: for shutdown, when nobody should wait. */
  close(): void {
    this.#cancelPauseTimer?.();
    this.#cancelPauseTimer = undefined;
    const error = new Error(`concurrency limit of ${this.endpoint} closed while waiting`);
    for (const waiter of this.#queue.splice(0)) waiter.reject(error);
  }

  #hasRoom(): boolean {
    return this.#active < this.limit() && this.#clock.now() >= this.#pausedUntil;
  }

  /** Hands free slots to waiters in order; a release can never be overtaken by a newcomer. */
  #drain(): void {
    while (this.#queue.length > 0 && this.#hasRoom()) {
      this.#active++;
      (this.#queue.shift() as Waiter).grant();
    }
    this.#armPauseTimer();
  }

  #armPauseTimer(): void {
    const delay = this.#pausedUntil - this.#clock.now();
    if (this.#cancelPauseTimer || this.#queue.length === 0 || delay <= 0) return;
    // A paused endpoint is no reason to keep the process alive: the clock's timers never do.
    this.#cancelPauseTimer = this.#clock.setTimer(() => {
      this.#cancelPauseTimer = undefined;
      this.#drain();
    }, delay);
  }

  #releaser(): ReleaseSlot {
    // The fleet-wide limit this call was sent under: every overload from calls sent under the
    // same limit asks for the same lower limit, so a burst of 429s halves it once, not once per
    // call (TCP's one decrease per window).
    const sentUnder = this.#global;
    let released = false;
    return (outcome, retryAfterMs) => {
      if (released) return;
      released = true;
      this.#active--;
      this.#record(outcome, sentUnder, retryAfterMs);
      this.#drain();
    };
  }

  #record(outcome: CallOutcome, sentUnder: number, retryAfterMs: number | undefined): void {
    if (outcome === "neutral") return;
    if (outcome === "overload") {
      this.#throttleEvents++;
      this.#decrease(Math.floor(sentUnder * this.#tuning.decreaseFactor));
      if (retryAfterMs !== undefined && retryAfterMs > 0)
        this.#pauseUntil(this.#clock.now() + Math.min(retryAfterMs, MAX_PAUSE_MS));
      this.#openWindow();
      return;
    }
    if (outcome === "success") this.#successes++;
    else this.#errors++;
    const judged = this.#successes + this.#errors;
    if (judged < this.#windowSize) return;
    const ratio = this.#successes / judged;
    if (this.#errors > this.#successes) {
      this.#decrease(Math.floor(this.#windowSize * ERROR_DECREASE_FACTOR));
    } else if (ratio >= this.#tuning.increaseAbove && this.#global < this.max) {
      this.#global++;
      this.#pending.increase++;
    }
    this.#openWindow();
  }

  #decrease(target: number): void {
    const to = this.#clamp(target);
    this.#global = Math.min(this.#global, to);
    // Absolute targets combine with min(): two processes asking for the same one lower the
    // shared limit once. Increases earned before a decrease are void.
    this.#pending.decreaseTo = minDefined(this.#pending.decreaseTo, to);
    this.#pending.increase = 0;
  }

  #pauseUntil(until: number): void {
    if (until <= this.#pausedUntil) return;
    this.#pausedUntil = until;
    this.#pending.pausedUntil = Math.max(this.#pending.pausedUntil, until);
    // A timer armed for an earlier end would wake waiters too soon; re-arm for the new end.
    this.#cancelPauseTimer?.();
    this.#cancelPauseTimer = undefined;
    this.#armPauseTimer();
  }

  #openWindow(): void {
    this.#windowSize = this.#global;
    this.#successes = 0;
    this.#errors = 0;
  }

  #clamp(limit: number): number {
    return Math.min(this.max, Math.max(this.min, limit));
  }
}

function minDefined(a: number | undefined, b: number | undefined): number | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return Math.min(a, b);
}
