import { describe, expect, it } from "vitest";
import { createAdaptiveConcurrency } from "../src/concurrency/adaptive-concurrency.ts";
import {
  AdaptiveLimiter,
  DEFAULT_TUNING,
  MAX_PAUSE_MS,
} from "../src/concurrency/adaptive-limiter.ts";
import type { ReleaseSlot } from "../src/concurrency/call-outcome.ts";
import { processShare } from "../src/concurrency/process-share.ts";
import { ManualClock } from "./support/manual-clock.ts";

/**
 * One endpoint's AIMD limit on its own (no database): how it rises, falls, stays within its
 * bounds, pauses for Retry-After and serves its waiters.
 */

/** Takes `n` slots at once; every one must be granted without waiting. */
async function take(limiter: AdaptiveLimiter, n: number): Promise<ReleaseSlot[]> {
  return Promise.all(Array.from({ length: n }, () => limiter.acquire()));
}

/** Runs `n` calls one after another, each released with `outcome`. */
async function calls(limiter: AdaptiveLimiter, n: number, outcome: "success" | "error") {
  for (let i = 0; i < n; i++) (await limiter.acquire())(outcome);
}

/** Whether a promise has settled after pending callbacks ran. */
async function settled(promise: Promise<unknown>): Promise<boolean> {
  let done = false;
  void promise.then(
    () => (done = true),
    () => (done = true),
  );
  await new Promise((resolve) => setImmediate(resolve));
  return done;
}

describe("AdaptiveLimiter", () => {
  it("starts at max and never lets more than the limit run at once, serving waiters in order", async () => {
    const limiter = new AdaptiveLimiter("llm:a", { min: 1, max: 2 });
    expect(limiter.limit()).toBe(2);
    const [first, second] = await take(limiter, 2);
    const order: number[] = [];
    const third = limiter.acquire().then((release) => (order.push(3), release));
    const fourth = limiter.acquire().then((release) => (order.push(4), release));
    expect(await settled(third)).toBe(false);
    expect([limiter.inFlight(), limiter.waiting()]).toEqual([2, 2]);
    first?.("success");
    first?.("success"); // a second release is ignored, not a second free slot
    expect(await settled(third)).toBe(true);
    expect(await settled(fourth)).toBe(false);
    second?.("neutral");
    (await third)("success");
    (await fourth)("success");
    expect(order).toEqual([3, 4]);
    expect([limiter.inFlight(), limiter.waiting()]).toEqual([0, 0]);
  });

  it("adds 1 per window of `limit` successes, up to max", async () => {
    const limiter = new AdaptiveLimiter("llm:a", { min: 1, max: 4, initial: 2 });
    await calls(limiter, 1, "success");
    expect(limiter.limit()).toBe(2);
    await calls(limiter, 1, "success");
    expect(limiter.limit()).toBe(3);
    await calls(limiter, 3, "success");
    expect(limiter.limit()).toBe(4);
    await calls(limiter, 20, "success");
    expect(limiter.limit()).toBe(4);
  });

  it("holds the limit when a few calls fail, and cuts it to 3/4 when errors outnumber successes", async () => {
    const limiter = new AdaptiveLimiter("llm:a", { min: 1, max: 16, initial: 8 });
    // 7 of 8 succeed: below 0.95, so no increase, but no decrease either.
    await calls(limiter, 7, "success");
    await calls(limiter, 1, "error");
    expect(limiter.limit()).toBe(8);
    // Neutral outcomes (a 400, an abort) are not counted in the window.
    for (let i = 0; i < 10; i++) (await limiter.acquire())("neutral");
    await calls(limiter, 3, "success");
    await calls(limiter, 5, "error");
    expect(limiter.limit()).toBe(6);
    expect(limiter.throttleEvents()).toBe(0);
  });

  it("halves the limit on an overload, once per burst of calls sent under the same limit", async () => {
    const limiter = new AdaptiveLimiter("llm:a", { min: 1, max: 8 });
    const releases = await take(limiter, 8);
    releases[0]?.("overload");
    expect(limiter.limit()).toBe(4);
    // Three more 429s from calls sent while the limit was 8: still 4, not 1.
    for (const release of releases.slice(1, 4)) release("overload");
    expect(limiter.limit()).toBe(4);
    expect(limiter.throttleEvents()).toBe(4);
    // 4 still in flight at a limit of 4: a new call waits until one ends.
    const next = limiter.acquire();
    expect(await settled(next)).toBe(false);
    releases[4]?.("success");
    expect(await settled(next)).toBe(true);
    // A 429 for a call sent under the new limit halves it again.
    (await next)("overload");
    expect(limiter.limit()).toBe(2);
    for (const release of releases.slice(5)) release("success");
  });

  it("stays within [min, max] whatever happens", async () => {
    const limiter = new AdaptiveLimiter("llm:a", { min: 3, max: 5 });
    for (let i = 0; i < 6; i++) (await limiter.acquire())("overload");
    expect(limiter.limit()).toBe(3);
    await calls(limiter, 10, "error");
    expect(limiter.limit()).toBe(3);
    await calls(limiter, 100, "success");
    expect(limiter.limit()).toBe(5);
  });

  it("pauses new calls for the Retry-After of an overload", async () => {
    const clock = new ManualClock();
    const limiter = new AdaptiveLimiter("llm:a", { min: 1, max: 4 }, DEFAULT_TUNING, clock);
    (await limiter.acquire())("overload", 200);
    expect(limiter.pausedForMs()).toBe(200);
    const waiting = limiter.acquire();
    clock.advance(199);
    expect(await settled(waiting)).toBe(false);
    clock.advance(1);
    expect(await settled(waiting)).toBe(true);
    (await waiting)("success");
    expect(limiter.pausedForMs()).toBe(0);
    // An absurd Retry-After is cut to MAX_PAUSE_MS.
    (await limiter.acquire())("overload", 86_400_000);
    expect(limiter.pausedForMs()).toBe(MAX_PAUSE_MS);
    limiter.close();
  });

  it("rejects a waiter whose signal aborts, and frees its place in the queue", async () => {
    const limiter = new AdaptiveLimiter("llm:a", { min: 1, max: 1 });
    const [held] = await take(limiter, 1);
    const controller = new AbortController();
    const aborted = limiter.acquire(controller.signal);
    const after = limiter.acquire();
    controller.abort(new Error("job cancelled"));
    await expect(aborted).rejects.toThrow("job cancelled");
    expect(limiter.waiting()).toBe(1);
    held?.("success");
    (await after)("success");
    await expect(limiter.acquire(AbortSignal.abort())).rejects.toMatchObject({
      name: "AbortError",
    });
    expect(limiter.inFlight()).toBe(0);
  });

  it("runs a function in a slot and judges its failure with classify", async () => {
    const limiter = new AdaptiveLimiter("search:web", { min: 1, max: 4 });
    const answer = limiter.run(
      () => Promise.resolve(42),
      () => ({ outcome: "error" }),
    );
    expect(await answer).toBe(42);
    const failing = limiter.run(
      () => Promise.reject(new Error("429")),
      () => ({ outcome: "overload", retryAfterMs: 50 }),
    );
    await expect(failing).rejects.toThrow("429");
    expect([limiter.limit(), limiter.throttleEvents(), limiter.inFlight()]).toEqual([2, 1, 0]);
    expect(limiter.pausedForMs()).toBeGreaterThan(0);
  });

  it("refuses bounds that make no sense", () => {
    expect(() => new AdaptiveLimiter("llm:a", { min: 0, max: 4 })).toThrow(/positive integer/);
    expect(() => new AdaptiveLimiter("llm:a", { min: 5, max: 4 })).toThrow(/min <= initial/);
    expect(() => new AdaptiveLimiter("llm:a", { min: 1, max: 4, initial: 9 })).toThrow(/llm:a/);
  });
});

describe("processShare", () => {
  it("divides the fleet-wide limit rounding down, never below 1", () => {
    expect(processShare(16, 1)).toBe(16);
    expect(processShare(16, 2)).toBe(8);
    expect(processShare(5, 4)).toBe(1); // 4 calls, not 8 with ceil
    expect(processShare(15, 4)).toBe(3);
    expect(processShare(2, 4)).toBe(1);
    expect(processShare(8, 0)).toBe(8);
  });
});

describe("createAdaptiveConcurrency without a database", () => {
  it("keeps one limiter per endpoint, reports them all, and rejects waiters on stop", async () => {
    const concurrency = createAdaptiveConcurrency({ decreaseFactor: 0.25 });
    const llm = concurrency.limiter("llm:primary", { min: 1, max: 8 });
    expect(concurrency.limiter("llm:primary", { min: 1, max: 2 })).toBe(llm);
    const host = concurrency.limiter("host:example.com", { min: 1, max: 1 });
    concurrency.start(); // no database: nothing to sync, no timer
    (await llm.acquire())("overload");
    const held = await host.acquire();
    const waiter = host.acquire();
    expect(concurrency.snapshot()).toEqual([
      {
        endpoint: "llm:primary",
        limit: 2, // 8 x 0.25
        globalLimit: 2,
        inFlight: 0,
        waiting: 0,
        throttleEvents: 1,
        pausedForMs: 0,
      },
      {
        endpoint: "host:example.com",
        limit: 1,
        globalLimit: 1,
        inFlight: 1,
        waiting: 1,
        throttleEvents: 0,
        pausedForMs: 0,
      },
    ]);
    await concurrency.stop();
    await expect(waiter).rejects.toThrow(/host:example.com closed/);
    held("success");
  });
});
