import { givePlace, takePlace, type Places } from "./place-queue.ts";
import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { coerceError } from "../core/coerce-error.ts";
import { CrawlError } from "./crawl-error.ts";
import type { DomainSlotStore, GiveBackRequest } from "./domain-slot-store.ts";
import {
  defaultIsHostFailure,
  politenessVerdict,
  type HostPoliteness,
  type HostPolitenessOptions,
  type HostSnapshot,
  type ScheduleOptions,
} from "./host-politeness.ts";

/**
 * Per-site manners held for the whole fleet through PostgreSQL (DomainSlotStore, statements in
 * src/sql/crawl-domain-slots.ts): every process asks the domain's row for a slot before a request
 * and gives it back after, so `per_host_concurrency`, `per_host_delay` (or robots.txt's
 * Crawl-delay), Retry-After pauses and the circuit breaker hold across processes as they did
 * within one. Two round trips per page when nothing waits (take, give back); more while the
 * domain's slots are all taken, one per poll.
 *
 * What stays in the process, because it is safe there and saves round trips:
 * - at most `concurrency` calls per domain even ask the database (the fleet limit can never be
 *   higher than that); the rest queue here and poll nothing;
 * - a circuit known open fails at once, and a known pause is waited out before asking, until the
 *   times the database gave (a process may learn late that they ended early: never the reverse,
 *   since pauses and cool-downs only grow until they pass).
 */

/** Each process deletes idle domain rows at most this often, at most PRUNE_LIMIT at a time. */
const PRUNE_EVERY_MS = 10 * 60_000;
const PRUNE_LIMIT = 500;
/** A domain nobody asked about for this long, holding nothing, is forgotten. */
const DOMAIN_IDLE_MS = 7 * 86_400_000;

export interface FleetPolitenessOptions extends HostPolitenessOptions {
  store: DomainSlotStore;
  /**
   * A slot not given back (its process died) is free again this long after its start. Longer
   * than the longest fetch and render, or a slow call's slot is handed on while it runs.
   */
  leaseMs: number;
  /** Told when giving a slot back failed: the page stands, the lease expires on its own. */
  onStoreError?: (error: Error) => void;
}

export interface FleetPolitenessStats {
  /** Statements sent to the database (each one round trip). */
  roundTrips: number;
  /** Slots granted, so calls that reached the host. */
  granted: number;
}

export interface FleetPoliteness extends HostPoliteness {
  stats(): FleetPolitenessStats;
}

interface LocalState extends Places {
  /** The take in progress: one call per domain asks the database at a time, the rest wait here. */
  taking: Promise<unknown>;
  /** Local clock; from the database's last answer. */
  pausedUntil: number;
  openUntil: number;
  failures: number;
}

export function createFleetPoliteness(options: FleetPolitenessOptions): FleetPoliteness {
  const { store, leaseMs } = options;
  const concurrency = options.concurrency ?? 2;
  const baseDelayMs = options.delayMs ?? 500;
  const failureThreshold = options.failureThreshold ?? 5;
  const coolDownMs = options.coolDownMs ?? 60_000;
  const defaultRetryAfterMs = options.defaultRetryAfterMs ?? 30_000;
  const isHostFailure = options.isHostFailure ?? defaultIsHostFailure;
  const now = options.now ?? Date.now;
  const onStoreError = options.onStoreError ?? (() => {});
  const domains = new Map<string, LocalState>();
  const counters: FleetPolitenessStats = { roundTrips: 0, granted: 0 };
  let lastPrune = now();

  /** After a give-back, now and then: forget domains idle for a week (their rows hold nothing). */
  async function pruneNowAndThen(): Promise<void> {
    if (now() - lastPrune < PRUNE_EVERY_MS) return;
    lastPrune = now();
    counters.roundTrips++;
    try {
      const deleted = await store.prune(DOMAIN_IDLE_MS, PRUNE_LIMIT);
      // A full batch means more are waiting: the next give-back may prune again.
      if (deleted >= PRUNE_LIMIT) lastPrune = Number.NEGATIVE_INFINITY;
    } catch (error) {
      onStoreError(new Error("could not delete idle crawl domains", { cause: error }));
    }
  }

  function stateOf(domain: string): LocalState {
    let state = domains.get(domain);
    if (!state) {
      state = {
        active: 0,
        taking: Promise.resolve(),
        waiters: [],
        pausedUntil: 0,
        openUntil: 0,
        failures: 0,
      };
      domains.set(domain, state);
    }
    return state;
  }

  function circuitOpen(domain: string, state: LocalState, retryAfterMs: number): CrawlError {
    return new CrawlError(
      "circuit_open",
      `${domain} failed ${state.failures} times in a row (across the fleet); not asking it again for ${Math.ceil(retryAfterMs / 1000)} s`,
      { url: `//${domain}`, retryAfterMs },
    );
  }

  /** Takes a fleet-wide slot and waits for its start; returns the lease to give back. */
  async function takeSlot(
    domain: string,
    state: LocalState,
    scheduleOptions: ScheduleOptions,
  ): Promise<string> {
    const { signal } = scheduleOptions;
    const delayMs = Math.max(baseDelayMs, scheduleOptions.delayMs ?? 0);
    const pollMs = Math.min(1_000, Math.max(25, delayMs));
    for (;;) {
      // Asked for nothing once the caller gave up: a slot granted now would be wasted.
      signal?.throwIfAborted();
      const openFor = state.openUntil - now();
      if (openFor > 0) throw circuitOpen(domain, state, openFor);
      const pausedFor = state.pausedUntil - now();
      if (pausedFor > 0) await sleep(pausedFor, undefined, { signal });
      const leaseId = randomUUID();
      counters.roundTrips++;
      const answer = await store.take({
        domain,
        leaseId,
        concurrency,
        delayMs: baseDelayMs,
        crawlDelayMs: scheduleOptions.delayMs ?? null,
        leaseMs,
        failureThreshold,
      });
      const t = now();
      state.failures = answer.failures;
      state.pausedUntil = Math.max(state.pausedUntil, t + answer.pausedForMs);
      if (answer.circuitOpen) {
        state.openUntil = Math.max(state.openUntil, t + answer.openForMs);
        throw circuitOpen(domain, state, answer.openForMs);
      }
      if (answer.granted) {
        counters.granted++;
        if (answer.waitMs > 0) {
          try {
            await sleep(answer.waitMs, undefined, { signal });
          } catch (error) {
            await giveBack({ domain, leaseId, outcome: "neutral", pauseMs: 0 }, state);
            throw error;
          }
        }
        return leaseId;
      }
      // Every slot is taken: look again when the next start could be, spread out a little so
      // the processes waiting do not all ask at the same instant.
      // Half a spacing at least: a slot given back in between is otherwise left unused past the
      // next start, which the fleet's rate never gets back.
      await sleep(Math.max(answer.waitMs, pollMs / 2) + (Math.random() * pollMs) / 2, undefined, {
        signal,
      });
    }
  }

  async function giveBack(
    request: Pick<GiveBackRequest, "domain" | "leaseId" | "outcome" | "pauseMs">,
    state: LocalState,
  ): Promise<void> {
    counters.roundTrips++;
    try {
      const answer = await store.giveBack({ ...request, failureThreshold, coolDownMs });
      const t = now();
      state.failures = answer.failures;
      state.pausedUntil = Math.max(state.pausedUntil, t + answer.pausedForMs);
      if (answer.failures >= failureThreshold) {
        state.openUntil = Math.max(state.openUntil, t + answer.openForMs);
      }
    } catch (error) {
      onStoreError(
        new Error(`could not give back the crawl slot of ${request.domain}`, { cause: error }),
      );
    }
    await pruneNowAndThen();
  }

  async function schedule<T>(
    domain: string,
    task: () => Promise<T>,
    scheduleOptions: ScheduleOptions = {},
  ): Promise<T> {
    const state = stateOf(domain);
    const openFor = state.openUntil - now();
    if (openFor > 0) throw circuitOpen(domain, state, openFor);
    await takePlace(state, concurrency, scheduleOptions.signal);
    try {
      // One take at a time per domain: while the fleet's slots are all held, this process polls
      // once per turn, not once per call waiting; granted starts are spaced anyway.
      const previous = state.taking;
      const taken = untilAborted(previous, scheduleOptions.signal).then(() =>
        takeSlot(domain, state, scheduleOptions),
      );
      state.taking = taken.catch(() => undefined);
      const leaseId = await taken;
      let outcome: GiveBackRequest["outcome"] = "success";
      let pauseMs = 0;
      try {
        return await task();
      } catch (error) {
        const verdict = politenessVerdict(error, isHostFailure, defaultRetryAfterMs);
        outcome = verdict.hostFailure ? "failure" : "neutral";
        pauseMs = verdict.pauseMs;
        if (pauseMs > 0) state.pausedUntil = Math.max(state.pausedUntil, now() + pauseMs);
        throw error;
      } finally {
        await giveBack({ domain, leaseId, outcome, pauseMs }, state);
      }
    } finally {
      givePlace(state);
    }
  }

  function pause(domain: string, untilMs: number): void {
    const state = stateOf(domain);
    state.pausedUntil = Math.max(state.pausedUntil, untilMs);
    const pauseMs = untilMs - now();
    if (pauseMs > 0) {
      void giveBack({ domain, leaseId: null, outcome: "neutral", pauseMs }, state);
    }
  }

  return {
    schedule,
    pause,
    stats: () => ({ ...counters }),
    state: (domain): HostSnapshot => {
      const state = stateOf(domain);
      const t = now();
      return {
        inFlight: state.active,
        queued: state.waiters.length,
        consecutiveFailures: state.failures,
        circuit:
          state.failures < failureThreshold ? "closed" : t < state.openUntil ? "open" : "half_open",
        pausedUntil: state.pausedUntil,
      };
    },
  };
}

/** Resolves when `previous` settles (either way), or rejects when `signal` aborts first. */
function untilAborted(previous: Promise<unknown>, signal: AbortSignal | undefined): Promise<void> {
  const settled = previous.then(
    () => undefined,
    () => undefined,
  );
  if (!signal) return settled;
  signal.throwIfAborted();
  return new Promise<void>((resolve, reject) => {
    const onAbort = () => reject(coerceError(signal.reason));
    signal.addEventListener("abort", onAbort, { once: true });
    void settled.then(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    });
  });
}
