import { describe, expect, it } from "vitest";
import { CrawlError } from "../src/crawl/crawl-error.ts";
import { createHostPoliteness } from "../src/crawl/host-politeness.ts";

/**
 * Per-host limits with real (short) timings: concurrency, spacing, Retry-After pauses and the
 * circuit breaker. No network: tasks are plain promises.
 */

const wait = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const fail = (errorClass: CrawlError["errorClass"], retryAfterMs?: number) => () =>
  Promise.reject(new CrawlError(errorClass, errorClass, { url: "http://h/", retryAfterMs }));

describe("host politeness", () => {
  it("keeps at most `concurrency` tasks in flight per host, other hosts unaffected", async () => {
    const politeness = createHostPoliteness({ concurrency: 2, delayMs: 0 });
    let inFlight = 0;
    let peak = 0;
    const task = async () => {
      inFlight++;
      peak = Math.max(peak, inFlight);
      await wait(20);
      inFlight--;
    };
    const other = { started: 0 };
    await Promise.all([
      ...Array.from({ length: 8 }, () => politeness.schedule("a.test", task)),
      politeness.schedule("b.test", async () => {
        other.started = inFlight;
        await Promise.resolve();
      }),
    ]);
    expect(peak).toBe(2);
    // b.test ran while a.test's two slots were busy.
    expect(other.started).toBe(2);
    expect(politeness.state("a.test")).toMatchObject({ inFlight: 0, queued: 0 });
  });

  it("spaces starts by delayMs, or by a larger per-call delay (robots crawl-delay)", async () => {
    const politeness = createHostPoliteness({ concurrency: 4, delayMs: 50 });
    const starts: number[] = [];
    const task = () => {
      starts.push(performance.now());
      return Promise.resolve();
    };
    await Promise.all(Array.from({ length: 4 }, () => politeness.schedule("h", task)));
    const gaps = starts.slice(1).map((t, i) => t - (starts[i] as number));
    for (const gap of gaps) expect(gap).toBeGreaterThanOrEqual(45);

    starts.length = 0;
    await Promise.all(
      Array.from({ length: 3 }, () => politeness.schedule("slow", task, { delayMs: 120 })),
    );
    expect((starts[2] as number) - (starts[0] as number)).toBeGreaterThanOrEqual(230);
  });

  it("pauses the host until Retry-After after a 429", async () => {
    const politeness = createHostPoliteness({ delayMs: 0 });
    const t0 = Date.now();
    await expect(politeness.schedule("h", fail("rate_limited", 300))).rejects.toMatchObject({
      errorClass: "rate_limited",
    });
    expect(politeness.state("h").pausedUntil).toBeGreaterThanOrEqual(t0 + 300);
    const started = Date.now();
    await politeness.schedule("h", () => Promise.resolve());
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
  });

  it("opens the circuit after N consecutive host failures, fails fast, then lets one trial through", async () => {
    const politeness = createHostPoliteness({ delayMs: 0, failureThreshold: 3, coolDownMs: 200 });
    // A 404 says nothing about the host's health: it does not count.
    await expect(politeness.schedule("h", fail("http_4xx"))).rejects.toBeInstanceOf(CrawlError);
    for (let i = 0; i < 3; i++) {
      await expect(politeness.schedule("h", fail("connection"))).rejects.toMatchObject({
        errorClass: "connection",
      });
    }
    expect(politeness.state("h").circuit).toBe("open");
    let called = false;
    const started = performance.now();
    const refused = await politeness
      .schedule("h", () => {
        called = true;
        return Promise.resolve();
      })
      .catch((e: unknown) => e);
    expect(refused).toMatchObject({ errorClass: "circuit_open" });
    expect((refused as CrawlError).retryAfterMs).toBeGreaterThan(0);
    expect(called).toBe(false);
    expect(performance.now() - started).toBeLessThan(50);

    await wait(220);
    expect(politeness.state("h").circuit).toBe("half_open");
    // The trial fails: open again for another cool-down.
    await expect(politeness.schedule("h", fail("timeout"))).rejects.toMatchObject({
      errorClass: "timeout",
    });
    await expect(politeness.schedule("h", () => Promise.resolve())).rejects.toMatchObject({
      errorClass: "circuit_open",
    });
    await wait(220);
    // The trial succeeds: closed.
    await politeness.schedule("h", () => Promise.resolve("ok"));
    expect(politeness.state("h")).toMatchObject({ circuit: "closed", consecutiveFailures: 0 });
  });

  it("a success resets the failure count", async () => {
    const politeness = createHostPoliteness({ delayMs: 0, failureThreshold: 2 });
    await expect(politeness.schedule("h", fail("http_5xx"))).rejects.toBeInstanceOf(CrawlError);
    await politeness.schedule("h", () => Promise.resolve());
    await expect(politeness.schedule("h", fail("http_5xx"))).rejects.toBeInstanceOf(CrawlError);
    expect(politeness.state("h").circuit).toBe("closed");
  });
});
