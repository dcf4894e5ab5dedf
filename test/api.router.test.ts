import { Registry } from "prom-client";
import { parse as parseCsv } from "csv-parse/sync";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApiRouter, isLoopback } from "../src/api/api-router.ts";
import { OPENAPI_DOCUMENT } from "../src/api/openapi-document.ts";
import { startHttpServer } from "../src/http/start-http-server.ts";
import type { Runtime } from "../src/pipeline/runtime.ts";
import { openGleaner } from "../src/app/open-gleaner.ts";
import { startWorker } from "../src/worker/start-worker.ts";
import {
  answerRows,
  keyInSection,
  reply,
  rowSection,
  startFakeLlm,
  type FakeLlm,
} from "./support/fake-llm-server.ts";
import { quietLogger, startHarness, type Harness } from "./support/gleaner-harness.ts";

/** The fields the tests read from the API's JSON answers. */
interface ApiBody {
  id: string;
  pipeline: string;
  error: string;
  total: number;
  done: number;
  pending: number;
  rows_per_second: number;
  rows: (Record<string, unknown> & { key: string; confidence: number })[];
  failures_by_class: unknown[];
  worst_rows: Record<string, unknown>[];
  by_status: Record<string, number>;
  completeness: number;
}

let llm: FakeLlm;
let h: Harness;
let base: string;
let closeServer: () => Promise<void>;
const TOKEN = "test-token-0123456789abcdef";

async function serve(runtime: Runtime): Promise<{ url: string; close: () => Promise<void> }> {
  const http = await startHttpServer({
    host: "127.0.0.1",
    port: 0,
    registry: new Registry(),
    database: h.app.database,
    schema: "gleaner",
    api: createApiRouter(runtime, () => {}),
  });
  return { url: http.url, close: http.close };
}

async function call(
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
  url = base,
): Promise<{ status: number; json: ApiBody; text: string; type: string }> {
  const isText = typeof body === "string";
  const res = await fetch(url + path, {
    method,
    headers: {
      ...(body === undefined ? {} : { "content-type": isText ? "text/csv" : "application/json" }),
      ...headers,
    },
    body: body === undefined ? undefined : isText ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json = {} as ApiBody;
  try {
    json = JSON.parse(text) as ApiBody;
  } catch {
    // Not JSON (CSV, plain text): callers read `text`.
  }
  return { status: res.status, json, text, type: res.headers.get("content-type") ?? "" };
}

beforeAll(async () => {
  llm = await startFakeLlm();
  llm.handle(
    answerRows((rowId, prompt) => {
      const id = keyInSection(prompt, rowId);
      return {
        industry: { value: `industry ${id}`, confidence: 0.9 },
        employees: { value: Number(id) * 10, confidence: 0.8 },
      };
    }),
  );
  h = await startHarness(
    "api",
    `
llm:
  backends: [{ name: fake, base_url: ${llm.url}, model: fake }]
api: { max_rows_per_job: 50, max_body_bytes: 4096 }
pipelines:
  companies:
    table: companies
    inputs: [name, domain]
    outputs:
      industry: { type: text, description: "Primary industry" }
      employees: { type: integer, description: "Headcount" }
    retry: { max_attempts: 1, delays: [1m] }
    stages:
      - { name: profile, kind: llm, backends: [fake], prompt: "About {{name}} ({{domain}}) #{{id}}", outputs: [industry, employees] }
`,
  );
  const server = await serve(h.app.runtime);
  base = server.url;
  closeServer = server.close;
});

afterAll(async () => {
  await closeServer?.();
  await h?.close();
  await llm?.close();
});

describe("the REST API", () => {
  it("describes in /openapi.json exactly the routes it answers", async () => {
    const { routes } = createApiRouter(h.app.runtime, () => {});
    const doc = (await call("GET", "/openapi.json")).json as unknown as typeof OPENAPI_DOCUMENT;
    const described = Object.entries(doc.paths)
      .filter(([path]) => path.startsWith("/v1/"))
      .flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`))
      .sort();
    expect(described).toEqual(routes.map((r) => `${r.method} ${r.path}`).sort());
    for (const path of ["/healthz", "/readyz", "/metrics", "/openapi.json"]) {
      expect(doc.paths).toHaveProperty([path]);
      expect((await fetch(base + path)).status).toBe(200);
    }
  });

  it("takes rows as JSON, lands them in the table, and reports progress and results", async () => {
    const created = await call("POST", "/v1/jobs", {
      pipeline: "companies",
      rows: [
        { name: "acme", domain: "acme.com" },
        { name: "globex", domain: "globex.com" },
        { name: "initech", domain: null },
      ],
    });
    expect(created.status).toBe(201);
    expect(created.json).toMatchObject({ total: 3, pending: 3, done: 0, finished: false });
    const id = created.json.id;
    const landed = await h.query<{ name: string; enrichment_status: string }>(
      "select name, enrichment_status from companies order by id",
    );
    expect(landed.map((r) => r.name)).toEqual(["acme", "globex", "initech"]);

    await h.drain();
    const progress = await call("GET", `/v1/jobs/${id}`);
    expect(progress.json).toMatchObject({
      total: 3,
      done: 3,
      pending: 0,
      percent: 100,
      finished: true,
      eta_seconds: 0,
    });
    expect(progress.json.rows_per_second).toBeGreaterThan(0);

    const result = await call("GET", `/v1/jobs/${id}/result`);
    expect(result.json.rows).toHaveLength(3);
    expect(result.json.rows[0]).toMatchObject({
      name: "acme",
      domain: "acme.com",
      status: "done",
      industry: `industry ${result.json.rows[0]?.key}`,
      sources: { industry: [], employees: [] },
      errors: [],
    });
    expect(result.json.rows[0]?.confidence).toBeCloseTo(0.8);

    const csv = await call("GET", `/v1/jobs/${id}/result?format=csv`);
    expect(csv.type).toMatch(/text\/csv/);
    const records: Record<string, string>[] = parseCsv(csv.text, { columns: true });
    expect(records).toHaveLength(3);
    expect(Object.keys(records[0]!)).toEqual([
      "key",
      "status",
      "confidence",
      "name",
      "domain",
      "industry",
      "employees",
      "sources",
      "errors",
    ]);
    expect(records[1]).toMatchObject({ name: "globex", status: "done" });

    const list = await call("GET", "/v1/jobs");
    expect((list.json as unknown as { id: string }[]).map((j) => j.id)).toContain(id);
  });

  it("takes rows as CSV", async () => {
    const created = await call(
      "POST",
      "/v1/jobs?pipeline=companies",
      "name,domain\nhooli,hooli.com\npiedpiper,pp.com\n",
    );
    expect(created.status).toBe(201);
    expect(created.json.total).toBe(2);
  });

  it("answers bad input with a 4xx that names the row and the key", async () => {
    const bad = async (body: unknown, status: number, message: RegExp, headers = {}) => {
      const r = await call("POST", "/v1/jobs", body, headers);
      expect(r.status).toBe(status);
      expect(r.json.error).toMatch(message);
    };
    await bad(
      {
        pipeline: "companies",
        rows: [
          { name: "a", domain: "a" },
          { name: "b", domian: "b" },
        ],
      },
      400,
      /rows\[1\]\.domian is not an input/,
    );
    await bad(
      { pipeline: "companies", rows: [{ name: "a" }] },
      400,
      /rows\[0\]\.domain is missing/,
    );
    await bad({ pipeline: "companies", rows: [] }, 400, /non-empty array/);
    await bad({ pipeline: "nope", rows: [{ name: "a", domain: "b" }] }, 404, /no pipeline "nope"/);
    await bad({ rows: [{ name: "a", domain: "b" }] }, 400, /name the pipeline/);
    const many = Array.from({ length: 51 }, (_, i) => ({ name: `n${i}`, domain: "d" }));
    await bad({ pipeline: "companies", rows: many }, 413, /limit of 50 per job/);
    const big = Array.from({ length: 40 }, (_, i) => ({ name: "x".repeat(100) + i, domain: "d" }));
    await bad({ pipeline: "companies", rows: big }, 413, /4096-byte limit/);
    const notJson = await fetch(base + "/v1/jobs", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{oops",
    });
    expect(notJson.status).toBe(400);
    const wrongType = await fetch(base + "/v1/jobs", {
      method: "POST",
      headers: { "content-type": "text/plain" },
      body: "x",
    });
    expect(wrongType.status).toBe(415);
    expect((await call("GET", "/v1/jobs/00000000-0000-0000-0000-000000000000")).status).toBe(404);
    expect((await call("DELETE", "/v1/jobs")).status).toBe(405);
    // Nothing of the refused jobs reached the table.
    const [count] = await h.query<{ n: number }>(
      "select count(*)::int as n from companies where name like 'n%' or name like 'x%'",
    );
    expect(count?.n).toBe(0);
  });

  it("cancels a job's unsettled rows and resumes them", async () => {
    const created = await call("POST", "/v1/jobs", {
      pipeline: "companies",
      rows: [
        { name: "c1", domain: "c1" },
        { name: "c2", domain: "c2" },
      ],
    });
    const id = created.json.id;
    const cancelled = await call("POST", `/v1/jobs/${id}/cancel`);
    expect(cancelled.json).toMatchObject({ status: "cancelled", exhausted: 2, pending: 0 });
    const rows = await h.query<{ enrichment_status: string; enrichment_next_at: Date | null }>(
      "select enrichment_status, enrichment_next_at from companies where name in ('c1', 'c2')",
    );
    expect(
      rows.every((r) => r.enrichment_status === "exhausted" && r.enrichment_next_at === null),
    ).toBe(true);
    await h.drain();
    expect((await call("GET", `/v1/jobs/${id}`)).json.done).toBe(0);

    const resumed = await call("POST", `/v1/jobs/${id}/resume`);
    expect(resumed.json).toMatchObject({ status: "active", pending: 2, exhausted: 0 });
    await h.drain();
    expect((await call("GET", `/v1/jobs/${id}`)).json).toMatchObject({ done: 2, finished: true });
  });

  it("streams progress as server-sent events until the job is finished", async () => {
    const created = await call("POST", "/v1/jobs", {
      pipeline: "companies",
      rows: [{ name: "s1", domain: "s1" }],
    });
    const id = created.json.id;
    const stream = fetch(`${base}/v1/jobs/${id}/events`).then((r) => r.text());
    await h.drain();
    const text = await stream;
    expect(text).toMatch(/^event: progress\ndata: \{/);
    expect(text).toContain("event: finished");
    const last = text
      .trim()
      .split("\n")
      .at(-1)!
      .replace(/^data: /, "");
    expect(JSON.parse(last)).toMatchObject({ id, done: 1, finished: true });
  });

  it("reports failures by class and the worst rows", async () => {
    llm.handle(() => reply.status(500, { error: { message: "down" } }));
    await call("POST", "/v1/jobs", { pipeline: "companies", rows: [{ name: "f1", domain: "f1" }] });
    await h.drain();
    const report = await call("GET", "/v1/pipelines/companies/report");
    expect(report.status).toBe(200);
    expect(report.json.failures_by_class).toEqual([{ error_class: "server_error", rows: 1 }]);
    expect(report.json.worst_rows[0]).toMatchObject({
      status: "exhausted",
      error: { class: "server_error" },
    });
    expect(report.json.by_status.exhausted).toBeGreaterThanOrEqual(1);
    expect(report.json.completeness).toBeGreaterThan(0);
    expect((await call("GET", "/v1/pipelines/nope/report")).status).toBe(404);
  });

  it("runs an ad-hoc request as a pipeline of its own, in any process", async () => {
    llm.handle(
      answerRows((id, prompt) => ({
        sentiment: {
          value: rowSection(prompt, id).includes("awful") ? "negative" : "positive",
          confidence: 0.9,
        },
      })),
    );
    // Another process, started before the request existed.
    const other = await openGleaner(h.app.config, {
      env: { DATABASE_URL: h.testDb.url },
      logger: quietLogger,
    });
    const worker = await startWorker({
      runtime: other.runtime,
      url: h.testDb.url,
      logger: quietLogger,
    });
    try {
      const created = await call("POST", "/v1/jobs", {
        request: {
          inputs: ["title"],
          outputs: { sentiment: { type: "text", description: "positive or negative" } },
          search_context: "Customer reviews of {{toasters}}",
        },
        rows: [{ title: "great toaster" }, { title: "awful toaster" }],
      });
      expect(created.status).toBe(201);
      const id = created.json.id;
      expect(other.runtime.pipelines.has(created.json.pipeline)).toBe(false);
      expect(await h.sweep(created.json.pipeline)).toBe(2);
      await expect
        .poll(async () => (await call("GET", `/v1/jobs/${id}`)).json.done, { timeout: 10_000 })
        .toBe(2);
      expect(other.runtime.pipelines.has(created.json.pipeline)).toBe(true);
      const result = await call("GET", `/v1/jobs/${id}/result`);
      expect(result.json.rows.map((r) => [r.title, r.sentiment])).toEqual([
        ["great toaster", "positive"],
        ["awful toaster", "negative"],
      ]);
      const prompt = llm.requests.at(-1)?.prompt ?? "";
      expect(prompt).toContain("Context: Customer reviews of { {toasters} }");
      expect(prompt).toContain("title: great toaster");
    } finally {
      await worker.stop();
      await other.close();
    }
    const bad = await call("POST", "/v1/jobs", {
      request: { inputs: ["title"], outputs: { score: { type: "float", description: "x" } } },
      rows: [{ title: "t" }],
    });
    expect(bad.status).toBe(400);
    expect(bad.json.error).toMatch(/outputs\.score\.type.*one of text, integer/);
    const extra = await call("POST", "/v1/jobs", {
      request: { inputs: ["t"], outputs: { s: { type: "text", description: "x" } }, model: "x" },
      rows: [{ t: "t" }],
    });
    expect(extra.json.error).toMatch(/request\.model is not allowed/);
  });

  it("requires a bearer token when tokens are configured, and loopback otherwise", async () => {
    const runtime = {
      ...h.app.runtime,
      config: { ...h.app.runtime.config, api: { ...h.app.runtime.config.api, tokens: [TOKEN] } },
    };
    const guarded = await serve(runtime);
    try {
      expect((await call("GET", "/v1/jobs", undefined, {}, guarded.url)).status).toBe(401);
      expect(
        (
          await call(
            "GET",
            "/v1/jobs",
            undefined,
            { authorization: "Bearer wrong-token-0123456789ab" },
            guarded.url,
          )
        ).status,
      ).toBe(401);
      expect(
        (
          await call(
            "GET",
            "/v1/jobs",
            undefined,
            { authorization: `Bearer ${TOKEN}` },
            guarded.url,
          )
        ).status,
      ).toBe(200);
      // Health and metrics stay open for probes and Prometheus.
      expect((await fetch(`${guarded.url}/healthz`)).status).toBe(200);
    } finally {
      await guarded.close();
    }
    expect(isLoopback("127.0.0.1")).toBe(true);
    expect(isLoopback("::ffff:127.0.0.1")).toBe(true);
    expect(isLoopback("10.0.0.5")).toBe(false);
    expect(isLoopback("::ffff:192.168.1.2")).toBe(false);
  });
});
