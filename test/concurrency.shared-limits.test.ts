import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  createAdaptiveConcurrency,
  type AdaptiveConcurrency,
  type AdaptiveConcurrencyOptions,
} from "../src/concurrency/adaptive-concurrency.ts";
import { llmEndpoint } from "../src/concurrency/endpoint-key.ts";
import { parseConfig } from "../src/config/load-config.ts";
import { connectDatabase, type Database } from "../src/db/connect-database.ts";
import { migrate } from "../src/db/migrate.ts";
import { createLlmBackend } from "../src/llm/llm-backend.ts";
import { LlmError } from "../src/llm/llm-error.ts";
import type { LlmBackendConfig } from "../src/llm/llm-types.ts";
import { answerRows, reply, startFakeLlm, type FakeLlm } from "./support/fake-llm-server.ts";
import { MINIMAL_CONFIG_YAML } from "./support/minimal-config.ts";
import { ManualClock } from "./support/manual-clock.ts";
import { createTestDatabase, type TestDatabase } from "./support/test-database.ts";

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

/**
 * Adaptive limits shared by several Gleaner processes through gleaner.concurrency_limits, on a
 * real PostgreSQL. Each "process" is a registry of its own on its own pool; syncs are run by
 * hand (sync()) so every step is deterministic.
 */

let testDb: TestDatabase;
let a: Database;
let b: Database;
let llm: FakeLlm;
const registries: AdaptiveConcurrency[] = [];

beforeAll(async () => {
  testDb = await createTestDatabase("shared_limits");
  const env = { DATABASE_URL: testDb.url };
  const config = parseConfig(MINIMAL_CONFIG_YAML, { env });
  a = await connectDatabase(config, { env, poolSize: 2 });
  b = await connectDatabase(config, { env, poolSize: 2 });
  await migrate(a, config);
  llm = await startFakeLlm();
});

afterEach(async () => {
  await Promise.all(registries.splice(0).map((r) => r.stop()));
});

afterAll(async () => {
  await llm?.close();
  await a?.close();
  await b?.close();
  await testDb?.drop();
});

/** A registry as one Gleaner process would have it, on that process's pool. */
function processOn(
  database: Database,
  options: AdaptiveConcurrencyOptions = {},
): AdaptiveConcurrency {
  const registry = createAdaptiveConcurrency({
    db: database.db,
    schema: "gleaner",
    processCount: () => 2,
    ...options,
  });
  registries.push(registry);
  return registry;
}

async function row(endpoint: string) {
  const result = await a.pool.query<{ global_limit: number; paused: boolean }>(
    `select global_limit, coalesce(paused_until > now(), false) as paused
     from gleaner.concurrency_limits where endpoint = $1`,
    [endpoint],
  );
  return result.rows[0];
}

describe("shared concurrency limits", () => {
  it("gives each of two processes half the fleet-wide limit", async () => {
    const one = processOn(a).limiter("llm:half", { min: 1, max: 8 });
    const two = processOn(b).limiter("llm:half", { min: 1, max: 8 });
    await Promise.all(registries.map((r) => r.sync()));
    expect([one.limit(), two.limit()]).toEqual([4, 4]);
    expect([one.globalLimit(), two.globalLimit()]).toEqual([8, 8]);
    expect(await row("llm:half")).toEqual({ global_limit: 8, paused: false });
  });

  it("lowers the other process's share after an overload seen by one, once per burst", async () => {
    const [pa, pb] = [processOn(a), processOn(b)];
    const one = pa.limiter("llm:burst", { min: 1, max: 16 });
    const two = pb.limiter("llm:burst", { min: 1, max: 16 });
    await pa.sync();
    await pb.sync();
    expect([one.limit(), two.limit()]).toEqual([8, 8]);

    (await one.acquire())("overload");
    expect(one.limit()).toBe(4); // at once, in the process that saw it
    expect(two.limit()).toBe(8); // the other one learns at its next sync
    await pa.sync();
    await pb.sync();
    expect([one.globalLimit(), two.globalLimit()]).toEqual([8, 8]);
    expect([one.limit(), two.limit()]).toEqual([4, 4]);
    expect((await row("llm:burst"))?.global_limit).toBe(8);

    // Both processes get 429s for calls sent under the same limit (8): it halves once, to 4.
    const [ra, rb] = [await one.acquire(), await two.acquire()];
    ra("overload");
    rb("overload");
    await Promise.all([pa.sync(), pb.sync()]);
    await pa.sync();
    expect((await row("llm:burst"))?.global_limit).toBe(4);
    expect([one.limit(), two.limit()]).toEqual([2, 2]);
    expect(pa.snapshot()).toEqual([
      {
        endpoint: "llm:burst",
        limit: 2,
        globalLimit: 4,
        inFlight: 0,
        waiting: 0,
        throttleEvents: 2,
        pausedForMs: 0,
      },
    ]);
  });

  it("adds the increases of every process to the shared limit", async () => {
    const [pa, pb] = [processOn(a), processOn(b)];
    const one = pa.limiter("llm:grow", { min: 1, max: 10, initial: 4 });
    const two = pb.limiter("llm:grow", { min: 1, max: 10, initial: 4 });
    await Promise.all([pa.sync(), pb.sync()]);
    // A window is the fleet-wide limit's worth of calls (4): one +1 per process.
    for (const limiter of [one, two])
      for (let i = 0; i < 4; i++) (await limiter.acquire())("success");
    await Promise.all([pa.sync(), pb.sync()]);
    await Promise.all([pa.sync(), pb.sync()]);
    expect((await row("llm:grow"))?.global_limit).toBe(6);
    expect([one.limit(), two.limit()]).toEqual([3, 3]);
  });

  it("pauses every process for a Retry-After seen by one", async () => {
    // Each process's clock stands still; the database's runs. A 60 s pause leaves a loaded
    // machine all the time it needs between the two syncs.
    const [clockA, clockB] = [new ManualClock(), new ManualClock()];
    const [pa, pb] = [processOn(a, { clock: clockA }), processOn(b, { clock: clockB })];
    const one = pa.limiter("llm:pause", { min: 1, max: 4 });
    const two = pb.limiter("llm:pause", { min: 1, max: 4 });
    await Promise.all([pa.sync(), pb.sync()]);
    (await one.acquire())("overload", 60_000);
    await pa.sync();
    await pb.sync();
    expect(await row("llm:pause")).toMatchObject({ paused: true });
    const paused = two.pausedForMs();
    expect(paused).toBeGreaterThan(30_000);
    expect(paused).toBeLessThanOrEqual(60_000);
    const waiting = two.acquire();
    clockB.advance(paused - 1);
    expect(await settled(waiting)).toBe(false);
    clockB.advance(1);
    (await waiting)("success");
    expect(two.pausedForMs()).toBe(0);
  });

  it("divides by the live workers of gleaner.workers when no process count is given", async () => {
    await a.pool.query(`
      insert into gleaner.workers (id, host, pid, heartbeat_at) values
        ('w1', 'h', 1, now()), ('w2', 'h', 2, now()), ('w3', 'h', 3, now()),
        ('gone', 'h', 4, now() - interval '10 minutes')`);
    try {
      const registry = processOn(a, { processCount: undefined });
      const limiter = registry.limiter("llm:workers", { min: 1, max: 10 });
      await registry.sync();
      expect([limiter.globalLimit(), limiter.limit()]).toEqual([10, 3]);
    } finally {
      await a.pool.query("delete from gleaner.workers");
    }
  });

  it("keeps adapting locally when the database cannot be reached, and says so", async () => {
    const registry = processOn(a, { schema: "no_such_schema" });
    const limiter = registry.limiter("llm:offline", { min: 1, max: 8 });
    await expect(registry.sync()).rejects.toThrow(/does not exist/);
    (await limiter.acquire())("overload");
    expect(limiter.limit()).toBe(4);
    await expect(registry.sync()).rejects.toThrow(/does not exist/);
    expect(limiter.limit()).toBe(4);
  });

  it("keeps the limit a restarted fleet learnt, within the bounds it now has", async () => {
    const first = processOn(a);
    (await first.limiter("llm:restart", { min: 1, max: 8 }).acquire())("overload");
    await first.sync();
    expect((await row("llm:restart"))?.global_limit).toBe(4);
    // Restarted with max_concurrency 3: the learnt 4 is clamped to 3.
    const again = processOn(b, { processCount: () => 1 });
    const limiter = again.limiter("llm:restart", { min: 1, max: 3 });
    await again.sync();
    expect([limiter.limit(), (await row("llm:restart"))?.global_limit]).toEqual([3, 3]);
  });
});

describe("an LLM backend on a shared limit", () => {
  function backendConfig(name: string): LlmBackendConfig {
    return {
      name,
      base_url: llm.url,
      model: "fake",
      timeout_ms: 2_000,
      max_concurrency: 4,
      structured_output: "json_schema",
    };
  }
  const request = {
    prompt: "### row 1\nhello\n",
    schema: { type: "object" },
    schemaName: "answer",
  };

  it("lowers its limit on a 429, waits out the Retry-After, and the other process follows", async () => {
    const [pa, pb] = [processOn(a), processOn(b)];
    const limiter = pa.limiter(llmEndpoint("throttled"), { min: 1, max: 4 });
    const other = pb.limiter(llmEndpoint("throttled"), { min: 1, max: 4 });
    await Promise.all([pa.sync(), pb.sync()]);
    expect([limiter.limit(), other.limit()]).toEqual([2, 2]);
    const backend = createLlmBackend(backendConfig("throttled"), { limiter });

    let calls = 0;
    llm.handle((req) => {
      calls++;
      if (calls === 1)
        return reply.status(429, { error: { message: "slow down" } }, { "retry-after-ms": "300" });
      return answerRows(() => ({ label: "ok" }))(req);
    });
    const failed = await backend.complete(request).catch((error: unknown) => error);
    expect(failed).toBeInstanceOf(LlmError);
    expect(failed).toMatchObject({ errorClass: "rate_limited", retryAfterMs: 300 });
    expect([limiter.globalLimit(), limiter.limit(), limiter.throttleEvents()]).toEqual([2, 1, 1]);

    const started = performance.now();
    const answer = await backend.complete(request);
    expect(answer.json).toEqual({ rows: [{ id: "1", label: "ok" }] });
    expect(performance.now() - started).toBeGreaterThan(250);
    expect(calls).toBe(2);

    await pa.sync();
    await pb.sync();
    expect([other.globalLimit(), other.limit()]).toEqual([2, 1]);
    expect(backend.inFlight()).toBe(0);
  });

  it("fails at once, without a request, while paused for longer than its timeout", async () => {
    const limiter = processOn(a).limiter(llmEndpoint("long-pause"), { min: 1, max: 4 });
    const backend = createLlmBackend(backendConfig("long-pause"), { limiter });
    llm.handle(() =>
      reply.status(429, { error: { message: "come back later" } }, { "retry-after": "30" }),
    );
    await backend.complete(request).catch(() => undefined);
    const before = llm.requests.length;
    const started = performance.now();
    const error = await backend.complete(request).catch((e: unknown) => e);
    expect(performance.now() - started).toBeLessThan(100);
    expect(llm.requests.length).toBe(before);
    expect(error).toMatchObject({ errorClass: "rate_limited" });
    expect((error as LlmError).retryAfterMs).toBeGreaterThan(29_000);
  });

  it("counts a 503 as an overload, a 500 as an error and a 400 as neither", async () => {
    const limiter = createAdaptiveConcurrency().limiter(llmEndpoint("statuses"), {
      min: 1,
      max: 8,
    });
    const backend = createLlmBackend(backendConfig("statuses"), { limiter });
    const fail = async (status: number, times: number) => {
      llm.handle(() => reply.status(status));
      for (let i = 0; i < times; i++) await backend.complete(request).catch(() => undefined);
    };
    await fail(503, 1);
    expect([limiter.globalLimit(), limiter.throttleEvents()]).toEqual([4, 1]);
    // A window of 4 calls where 3 time out or fail with a 500: cut to 3/4.
    llm.handle(answerRows(() => ({ label: "ok" })));
    await backend.complete(request);
    await fail(500, 3);
    expect(limiter.globalLimit()).toBe(3);
    await fail(400, 5);
    expect([limiter.globalLimit(), limiter.throttleEvents(), limiter.inFlight()]).toEqual([
      3, 1, 0,
    ]);
  });
});
