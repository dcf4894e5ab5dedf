import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createMetrics, type Metrics } from "../src/metrics/create-metrics.ts";
import { METRICS } from "../src/metrics/metric-catalogue.ts";
import { startWorker } from "../src/worker/start-worker.ts";
import { answerRows, reply, startFakeLlm, type FakeLlm } from "./support/fake-llm-server.ts";
import { quietLogger, startHarness, type Harness } from "./support/gleaner-harness.ts";
import { parseSamples, select, sum, value, type Sample } from "./support/prometheus-text.ts";

const PROMTOOL = "/usr/bin/promtool";

let llm: FakeLlm;
let h: Harness;
let metrics: Metrics;

// Two stages so a `when` can skip one; batch_size 1 so every row is its own LLM call and one
// row can fail while the others succeed.
beforeAll(async () => {
  llm = await startFakeLlm();
  h = await startHarness(
    "metrics",
    `
llm:
  budget_usd_per_hour: 2.5
  backends:
    - name: primary
      base_url: ${llm.url}
      model: fake-1
      timeout: 5s
      max_concurrency: 3
      price: { input_per_million: 1, output_per_million: 2 }
pipelines:
  companies:
    table: public.companies
    inputs: [name]
    outputs:
      industry:  { type: text,    description: "Primary industry" }
      employees: { type: integer, description: "Approximate headcount" }
    min_confidence: 0.7
    batch_size: 1
    retry: { max_attempts: 3, delays: [1m, 5m] }
    stages:
      - name: profile
        kind: llm
        backends: [primary]
        prompt: "Profile the company {{name}}."
        outputs: [industry]
      - name: size
        kind: llm
        backends: [primary]
        when: { output: industry, not_equals: "unknown" }
        prompt: "Size of the company {{name}}."
        outputs: [employees]
`,
  );
  metrics = createMetrics(h.app.runtime);
});

afterAll(async () => {
  metrics?.close();
  await h?.close();
  await llm?.close();
});

async function scrape(): Promise<{ text: string; samples: Sample[] }> {
  const text = await metrics.registry.metrics();
  return { text, samples: parseSamples(text) };
}

describe("createMetrics", () => {
  // Five rows enriched in full, one the model is unsure of (done, low confidence, `size`
  // skipped), one whose call fails with a 500 (failed, retried in a minute).
  beforeAll(async () => {
    llm.handle((req) => {
      if (req.prompt.includes("flaky")) return reply.status(500, { error: { message: "boom" } });
      const unsure = req.prompt.includes("unsure");
      return answerRows(() =>
        req.prompt.includes("Profile")
          ? {
              industry: unsure
                ? { value: "unknown", confidence: 0.5 }
                : { value: "software", confidence: 0.9 },
            }
          : { employees: { value: 50, confidence: 0.8 } },
      )(req);
    });
    await h.query(
      `insert into companies (name) select 'good' || i from generate_series(1, 5) i
       union all values ('unsure'), ('flaky')`,
    );
    await h.drain();
  });

  it("exports the rows by status, completeness, fill ratios and low confidence as the table has them", async () => {
    const { samples } = await scrape();
    const byStatus = await h.query<{ status: string; n: string }>(
      "select enrichment_status as status, count(*) as n from companies group by 1",
    );
    expect(byStatus.map((r) => [r.status, Number(r.n)]).sort()).toEqual([
      ["done", 6],
      ["failed", 1],
    ]);
    for (const status of ["pending", "queued", "running", "done", "failed", "exhausted"]) {
      const expected = Number(byStatus.find((r) => r.status === status)?.n ?? 0);
      expect(value(samples, "gleaner_rows", { pipeline: "companies", status })).toBe(expected);
    }

    const [truth] = await h.query<Record<string, string>>(`
      select count(*) as total,
        count(*) filter (where enrichment_status = 'done' and industry is not null and employees is not null) as complete,
        count(*) filter (where industry is not null) as industry,
        count(*) filter (where employees is not null) as employees,
        count(*) filter (where enrichment_status = 'done' and enrichment_confidence < 0.7) as low
      from companies`);
    const n = (key: string) => Number(truth?.[key]);
    expect([n("total"), n("complete"), n("industry"), n("employees"), n("low")]).toEqual([
      7, 5, 6, 5, 1,
    ]);
    expect(value(samples, "gleaner_completeness_ratio", { pipeline: "companies" })).toBeCloseTo(
      5 / 7,
    );
    expect(
      value(samples, "gleaner_column_fill_ratio", { pipeline: "companies", column: "industry" }),
    ).toBeCloseTo(6 / 7);
    expect(
      value(samples, "gleaner_column_fill_ratio", { pipeline: "companies", column: "employees" }),
    ).toBeCloseTo(5 / 7);
    expect(value(samples, "gleaner_low_confidence_rows", { pipeline: "companies" })).toBe(1);
    // The failed row waits for its retry and the unsure one for its re-check: nothing is due.
    expect(value(samples, "gleaner_backlog_rows", { pipeline: "companies" })).toBe(0);
    expect(value(samples, "gleaner_oldest_due_age_seconds", { pipeline: "companies" })).toBe(0);
  });

  it("counts a due row in the backlog and its age, and leaves claimed rows out", async () => {
    await h.query(
      "update companies set enrichment_next_at = now() - interval '90 seconds' where name = 'flaky'",
    );
    // A queued row whose lease ran out is due for the sweep but claimed, not waiting.
    await h.query(
      `update companies set enrichment_status = 'queued', enrichment_next_at = now() - interval '1 hour'
       where name = 'good1'`,
    );
    try {
      const { samples } = await scrape();
      expect(value(samples, "gleaner_backlog_rows", { pipeline: "companies" })).toBe(1);
      const age = value(samples, "gleaner_oldest_due_age_seconds", { pipeline: "companies" });
      expect(age).toBeGreaterThanOrEqual(90);
      expect(age).toBeLessThan(600);
      expect(value(samples, "gleaner_rows", { pipeline: "companies", status: "queued" })).toBe(1);
    } finally {
      await h.query(
        `update companies set enrichment_status = 'done', enrichment_next_at = null where name = 'good1';
         update companies set enrichment_next_at = now() + interval '1 minute' where name = 'flaky'`,
      );
    }
  });

  it("counts what the jobs did: stage rows, LLM calls, tokens, cost, settled rows, histograms", async () => {
    const { samples } = await scrape();
    const stage = (stage: string, outcome: string, error_class: string) =>
      value(samples, "gleaner_stage_rows_total", {
        pipeline: "companies",
        stage,
        outcome,
        error_class,
      });
    expect(stage("profile", "ok", "")).toBe(6);
    expect(stage("profile", "error", "server_error")).toBe(1);
    expect(stage("size", "ok", "")).toBe(5);
    expect(stage("size", "skipped", "")).toBe(1);
    // batch_size 1: one chunk per row through profile (7), one per row that reached size (5).
    const stageCount = (s: string) =>
      value(samples, "gleaner_stage_duration_seconds_count", { pipeline: "companies", stage: s });
    expect([stageCount("profile"), stageCount("size")]).toEqual([7, 5]);

    const llmLabels = { backend: "primary", model: "fake-1" };
    const calls = (outcome: string, error_class: string) =>
      value(samples, "gleaner_llm_calls_total", { ...llmLabels, outcome, error_class });
    expect(calls("ok", "")).toBe(11);
    expect(calls("error", "server_error")).toBe(1);
    expect(value(samples, "gleaner_llm_call_duration_seconds_count", llmLabels)).toBe(12);
    expect(
      value(samples, "gleaner_llm_tokens_total", { ...llmLabels, direction: "input" }),
    ).toBeGreaterThan(0);
    expect(
      value(samples, "gleaner_llm_tokens_total", { ...llmLabels, direction: "output" }),
    ).toBeGreaterThan(0);
    expect(value(samples, "gleaner_llm_cost_usd_total", llmLabels)).toBeGreaterThan(0);

    const settled = (status: string) =>
      value(samples, "gleaner_rows_settled_total", { pipeline: "companies", status });
    expect([settled("done"), settled("failed"), settled("exhausted")]).toEqual([6, 1, 0]);
    expect(value(samples, "gleaner_rows_released_total", { pipeline: "companies" })).toBe(0);
    expect(value(samples, "gleaner_row_latency_seconds_count", { pipeline: "companies" })).toBe(7);
    expect(value(samples, "gleaner_row_confidence_count", { pipeline: "companies" })).toBe(6);
    // Row confidence is its lowest output's: 0.8 for the five, 0.5 for the unsure one.
    const bucket = (le: string) =>
      value(samples, "gleaner_row_confidence_bucket", { pipeline: "companies", le });
    expect([bucket("0.4"), bucket("0.5"), bucket("0.8"), bucket("+Inf")]).toEqual([0, 1, 6, 6]);
    expect(value(samples, "gleaner_row_confidence_sum", { pipeline: "companies" })).toBeCloseTo(
      5 * 0.8 + 0.5,
    );
  });

  it("exports the endpoint's concurrency limit, calls in flight, throttling and the budget", async () => {
    const { samples } = await scrape();
    const endpoint = { endpoint: "llm:primary" };
    expect(value(samples, "gleaner_concurrency_limit", endpoint)).toBe(3);
    expect(value(samples, "gleaner_calls_in_flight", endpoint)).toBe(0);
    expect(value(samples, "gleaner_throttle_events_total", endpoint)).toBe(0);
    expect(value(samples, "gleaner_llm_budget_usd_per_hour")).toBe(2.5);
  });

  it("counts a 429 as a throttle event of its endpoint", async () => {
    llm.handle(() =>
      reply.status(429, { error: { message: "slow down" } }, { "retry-after": "1" }),
    );
    await h.query("insert into companies (name) values ('throttled')");
    await h.drain();
    const { samples } = await scrape();
    expect(value(samples, "gleaner_throttle_events_total", { endpoint: "llm:primary" })).toBe(1);
    // The 429 halved the adaptive limit of 3 (this process is the only one: all of it is ours).
    expect(value(samples, "gleaner_concurrency_limit", { endpoint: "llm:primary" })).toBe(1);
    expect(
      value(samples, "gleaner_llm_calls_total", {
        backend: "primary",
        outcome: "error",
        error_class: "rate_limited",
      }),
    ).toBe(1);
  });

  it("exports the queue by state, job failures and live workers while a worker runs", async () => {
    const worker = await startWorker({
      runtime: h.app.runtime,
      url: h.testDb.url,
      logger: quietLogger,
      events: metrics.workerEvents,
    });
    try {
      // A job with a payload the task rejects: counted as a failure, and not left behind in the
      // queue (Gleaner's task never throws; a row's fate lives in the row). Another waits an hour.
      await h.query(
        `select graphile_worker.add_job('gleaner_enrich', '{}'::json, max_attempts := 1);
         select graphile_worker.add_job('gleaner_enrich', '{}'::json, run_at := now() + interval '1 hour')`,
      );
      let samples: Sample[] = [];
      const queue = (state: string) => value(samples, "gleaner_queue_jobs", { state });
      // graphile-worker emits job:failed before it writes the failure: wait for both.
      for (let i = 0; i < 300; i++) {
        samples = (await scrape()).samples;
        if (value(samples, "gleaner_job_failures_total") > 0 && queue("locked") === 0) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(value(samples, "gleaner_job_failures_total")).toBe(1);
      expect([queue("ready"), queue("scheduled"), queue("locked"), queue("failed")]).toEqual([
        0, 1, 0, 0,
      ]);
      expect(value(samples, "gleaner_workers_alive")).toBeGreaterThanOrEqual(1);
      const ages = select(samples, "gleaner_worker_heartbeat_age_seconds");
      expect(ages.length).toBeGreaterThanOrEqual(1);
      expect(Math.min(...ages.map((s) => s.value))).toBeLessThan(30);
    } finally {
      await worker.stop();
    }
    // A worker that stops deregisters: nothing alive any more.
    const { samples } = await scrape();
    expect(value(samples, "gleaner_workers_alive")).toBe(0);
    expect(select(samples, "gleaner_worker_heartbeat_age_seconds")).toEqual([]);
  });

  it("exports every metric of the catalogue, with its type, and default process metrics", async () => {
    const { text } = await scrape();
    const missing = METRICS.filter(
      (m) => !text.includes(`# HELP ${m.name} `) || !text.includes(`# TYPE ${m.name} ${m.type}\n`),
    ).map((m) => m.name);
    expect(missing).toEqual([]);
    expect(text).toMatch(/^gleaner_process_process_cpu_seconds_total \d/m);
    // Nothing gleaner_ that the catalogue does not list, apart from the process metrics.
    const names = [...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1] as string);
    const known = new Set<string>(METRICS.map((m) => m.name));
    expect(names.filter((n) => !known.has(n) && !n.startsWith("gleaner_process_"))).toEqual([]);
  });

  it("passes promtool check metrics", async (ctx) => {
    if (!existsSync(PROMTOOL)) {
      if (process.env.CI) throw new Error(`${PROMTOOL} is missing; CI must install prometheus`);
      console.log(`${PROMTOOL} not found: skipping promtool check metrics (install prometheus)`);
      ctx.skip();
      return;
    }
    const { text } = await scrape();
    const result = await promtoolCheckMetrics(text);
    expect(result, result.output).toMatchObject({ code: 0 });
  });

  it("leaves the budget out when none is configured", async () => {
    const runtime = h.app.runtime;
    const unbudgeted = createMetrics({
      ...runtime,
      config: { ...runtime.config, llmBudgetUsdPerHour: undefined },
    });
    try {
      const text = await unbudgeted.registry.metrics();
      expect(text).not.toContain("gleaner_llm_budget_usd_per_hour");
      expect(text).toContain("# HELP gleaner_rows ");
    } finally {
      unbudgeted.close();
    }
  });

  it("stops counting events after close()", async () => {
    const other = createMetrics(h.app.runtime);
    other.close();
    h.app.runtime.events.emit("row:settled", {
      pipeline: "companies",
      status: "exhausted",
      confidence: null,
      latencyMs: null,
    });
    const closed = parseSamples(await other.registry.metrics());
    const open = (await scrape()).samples;
    const exhausted = { pipeline: "companies", status: "exhausted" };
    expect(value(closed, "gleaner_rows_settled_total", exhausted)).toBe(0);
    expect(value(open, "gleaner_rows_settled_total", exhausted)).toBe(1);
    expect(sum(open, "gleaner_rows_settled_total")).toBeGreaterThan(1);
  });
});

function promtoolCheckMetrics(text: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(PROMTOOL, ["check", "metrics"], { stdio: ["pipe", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, output }));
    child.stdin.end(text);
  });
}
