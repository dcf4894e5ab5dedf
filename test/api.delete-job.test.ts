import { Registry } from "prom-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApiRouter } from "../src/api/api-router.ts";
import { startHttpServer } from "../src/http/start-http-server.ts";
import {
  answerRows,
  keyInSection,
  rowIdsInPrompt,
  startFakeLlm,
  type FakeLlm,
} from "./support/fake-llm-server.ts";
import { startHarness, type Harness } from "./support/gleaner-harness.ts";

/**
 * A job's timings (started_at, completed_at, duration, eta_at) and `DELETE /v1/jobs/:id`: the
 * rows not done leave the user's table (all of them with rows=all), also one a worker is holding,
 * which its late write must not bring back; with the bearer token.
 */

interface Job {
  id: string;
  total: number;
  done: number;
  pending: number;
  finished: boolean;
  created_at: string;
  started_at: string | null;
  completed_at: string | null;
  duration_seconds: number | null;
  eta_seconds: number | null;
  eta_at: string | null;
  error?: string;
}

const TOKEN = "delete-token-0123456789abcdef";
let llm: FakeLlm;
let h: Harness;
let base: string;
let closeServer: () => Promise<void>;
/** When set, the fake LLM holds every request until it resolves. */
let gate: Promise<void> | undefined;

async function call<T = Job>(
  method: string,
  path: string,
  body?: unknown,
  token: string | undefined = TOKEN,
): Promise<{ status: number; json: T }> {
  const res = await fetch(base + path, {
    method,
    headers: {
      ...(body === undefined ? {} : { "content-type": "application/json" }),
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, json: (await res.json()) as T };
}

async function names(): Promise<string[]> {
  const rows = await h.query<{ name: string }>("select name from companies order by name");
  return rows.map((r) => r.name);
}

async function submit(...rows: string[]): Promise<Job> {
  const created = await call("POST", "/v1/jobs", {
    pipeline: "companies",
    rows: rows.map((name) => ({ name })),
  });
  expect(created.status).toBe(201);
  return created.json;
}

/** What the count trigger says the table holds, against what it does hold. */
async function countsAgree(): Promise<void> {
  const [counted] = await h.query<{ n: number }>(
    `select coalesce(sum(n), 0)::int as n from gleaner.row_counts where pipeline = 'companies'
       and status in ('pending', 'queued', 'running', 'done', 'failed', 'exhausted')`,
  );
  const [real] = await h.query<{ n: number }>("select count(*)::int as n from companies");
  expect(counted?.n).toBe(real?.n);
}

beforeAll(async () => {
  llm = await startFakeLlm();
  const answer = answerRows((rowId, prompt) => ({
    industry: { value: `industry of ${keyInSection(prompt, rowId)}`, confidence: 0.9 },
  }));
  llm.handle(async (req) => {
    if (gate && rowIdsInPrompt(req.prompt).length > 0) await gate;
    return answer(req);
  });
  h = await startHarness(
    "api_delete_job",
    `
llm:
  backends: [{ name: fake, base_url: ${llm.url}, model: fake }]
api: { tokens: [${TOKEN}] }
pipelines:
  companies:
    table: companies
    inputs: [name]
    outputs:
      industry: { type: text, description: "Primary industry" }
    retry: { max_attempts: 2, delays: [1m] }
    stages:
      - { name: profile, kind: llm, backends: [fake], batch_size: 1, prompt: "About {{name}} #{{id}}", outputs: [industry] }
`,
  );
  const http = await startHttpServer({
    host: "127.0.0.1",
    port: 0,
    registry: new Registry(),
    database: h.app.database,
    schema: "gleaner",
    api: createApiRouter(h.app.runtime, () => {}),
  });
  base = http.url;
  closeServer = http.close;
});

afterAll(async () => {
  await closeServer?.();
  await h?.close();
  await llm?.close();
});

describe("a job's timings", () => {
  it("has no start before a row ran, then started_at ≤ completed_at = eta_at and a duration", async () => {
    const job = await submit("acme", "globex");
    expect(job).toMatchObject({
      started_at: null,
      completed_at: null,
      duration_seconds: null,
      eta_at: null,
    });
    await h.drain();
    const after = (await call("GET", `/v1/jobs/${job.id}`)).json;
    expect(after.finished).toBe(true);
    const started = Date.parse(after.started_at ?? "");
    const completed = Date.parse(after.completed_at ?? "");
    expect(started).toBeGreaterThanOrEqual(Date.parse(after.created_at));
    expect(completed).toBeGreaterThanOrEqual(started);
    expect(after.eta_at).toBe(after.completed_at);
    expect(after.duration_seconds).toBeCloseTo((completed - started) / 1000, 0);
    await call("DELETE", `/v1/jobs/${job.id}?rows=all`);
  });

  it("gives an ETA timestamp while rows remain", async () => {
    const job = await submit("initech", "hooli");
    await h.drain();
    // One row reset by a user: the job is running again, with a rate to extrapolate from.
    await h.query("update companies set enrichment_status = 'pending' where name = 'hooli'");
    const running = (await call("GET", `/v1/jobs/${job.id}`)).json;
    expect(running.finished).toBe(false);
    expect(running.completed_at).toBeNull();
    expect(running.eta_seconds).not.toBeNull();
    expect(Date.parse(running.eta_at ?? "")).toBeGreaterThanOrEqual(Date.now() - 60_000);
    await call("DELETE", `/v1/jobs/${job.id}?rows=all`);
  });
});

describe("DELETE /v1/jobs/:id", () => {
  it("needs the bearer token and a known rows value", async () => {
    const job = await submit("umbrella");
    expect((await call("DELETE", `/v1/jobs/${job.id}`, undefined, "")).status).toBe(401);
    const bad = await call<{ error: string }>("DELETE", `/v1/jobs/${job.id}?rows=some`);
    expect(bad.status).toBe(400);
    expect(bad.json.error).toMatch(/rows=some: must be unfinished .* or all/);
    expect(await names()).toContain("umbrella");
    await call("DELETE", `/v1/jobs/${job.id}?rows=all`);
    expect(await names()).not.toContain("umbrella");
  });

  it("removes the rows not done and keeps the done ones and the job", async () => {
    const job = await submit("stark", "wayne", "oscorp");
    await h.drain();
    await h.query(
      "update companies set enrichment_status = 'pending' where name in ('wayne', 'oscorp')",
    );
    const removed = await call<{ deleted_rows: number; job: Job }>("DELETE", `/v1/jobs/${job.id}`);
    expect(removed.status).toBe(200);
    expect(removed.json.deleted_rows).toBe(2);
    expect(removed.json.job).toMatchObject({ total: 1, done: 1, pending: 0, finished: true });
    expect(await names()).toEqual(["stark"]);
    await countsAgree();

    const all = await call<{ deleted_rows: number; job: Job | null }>(
      "DELETE",
      `/v1/jobs/${job.id}?rows=all`,
    );
    expect(all.json).toEqual({ deleted_rows: 1, job: null });
    expect(await names()).toEqual([]);
    expect((await call("GET", `/v1/jobs/${job.id}`)).status).toBe(404);
    await countsAgree();
  });

  it("removes a row a worker is holding, and the worker's late write does not bring it back", async () => {
    let release = () => {};
    gate = new Promise<void>((resolve) => (release = resolve));
    const job = await submit("cyberdyne", "tyrell");
    const draining = h.drain();
    // Both rows are in the LLM's hands: running, claimed by the worker.
    for (let i = 0; llm.inFlight() < 2; i++) {
      if (i > 600) throw new Error("the rows never reached the fake LLM");
      await new Promise((r) => setTimeout(r, 50));
    }
    const running = await h.query<{ n: number }>(
      "select count(*)::int as n from companies where enrichment_status = 'running'",
    );
    expect(running[0]?.n).toBe(2);
    const removed = await call<{ deleted_rows: number; job: Job | null }>(
      "DELETE",
      `/v1/jobs/${job.id}`,
    );
    expect(removed.json).toEqual({ deleted_rows: 2, job: null });
    gate = undefined;
    release();
    await draining;
    expect(await names()).toEqual([]);
    await countsAgree();
    expect((await call("GET", `/v1/jobs/${job.id}`)).status).toBe(404);
  });
});
