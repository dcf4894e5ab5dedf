import { Registry } from "prom-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApiRouter } from "../src/api/api-router.ts";
import { startHttpServer } from "../src/http/start-http-server.ts";
import type { ColumnProvenance, RowState, StageRecord } from "../src/pipeline/row-state.ts";
import type { Runtime } from "../src/pipeline/runtime.ts";
import { answerRows, keyInSection, startFakeLlm, type FakeLlm } from "./support/fake-llm-server.ts";
import { startHarness, type Harness } from "./support/gleaner-harness.ts";

/**
 * The rows view and review routes: keyset pages with filters, one row's state, approve / edit /
 * reject with their errors, the bearer token, reprocess, the review queue and live row events.
 */
let llm: FakeLlm;
let h: Harness;
const servers: { close: () => Promise<void> }[] = [];
let base: string;
const TOKEN = "review-token-0123456789abcdef";

type Json = Record<string, unknown>;
interface RowJson {
  key: string;
  values: Record<string, unknown>;
  columns: Record<string, ColumnProvenance>;
  under_review: string[];
}
/** The fields the tests read from the answers. */
interface Body {
  error: string;
  rows: RowJson[];
  next: string | null;
  provenance: ColumnProvenance;
  state: { stages: Record<string, StageRecord> };
}

async function serve(runtime: Runtime): Promise<string> {
  const http = await startHttpServer({
    host: "127.0.0.1",
    port: 0,
    registry: new Registry(),
    database: h.app.database,
    schema: "gleaner",
    api: createApiRouter(runtime, () => {}),
  });
  servers.push(http);
  return http.url;
}

async function call(
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
  url = base,
): Promise<{ status: number; json: Body }> {
  const res = await fetch(url + path, {
    method,
    headers: { ...(body === undefined ? {} : { "content-type": "application/json" }), ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, json: (text ? JSON.parse(text) : {}) as Body };
}

beforeAll(async () => {
  llm = await startFakeLlm();
  llm.handle(
    answerRows((rowId, prompt) => {
      const id = Number(keyInSection(prompt, rowId));
      // Odd rows get an unsure industry: they wait for review.
      return {
        industry: { value: `industry ${id}`, confidence: id % 2 === 1 ? 0.5 : 0.9 },
        employees: { value: id * 10, confidence: 0.9 },
      };
    }),
  );
  h = await startHarness(
    "review_routes",
    `
llm:
  backends: [{ name: fake, base_url: ${llm.url}, model: fake }]
pipelines:
  companies:
    table: companies
    inputs: [name]
    outputs:
      industry: { type: text, description: "Primary industry" }
      employees: { type: integer, description: "Headcount" }
    retry: { max_attempts: 1, delays: [1m] }
    stages:
      - { name: profile, kind: llm, backends: [fake], prompt: "About {{name}} #{{id}}", outputs: [industry, employees] }
`,
  );
  base = await serve(h.app.runtime);
  await h.query("insert into companies (name) select 'company ' || i from generate_series(1, 6) i");
  await h.drain();
});

afterAll(async () => {
  for (const s of servers) await s.close();
  await h?.close();
  await llm?.close();
});

describe("the rows view", () => {
  it("pages by key and filters by status, NULL column, confidence and review", async () => {
    const first = await call("GET", "/v1/pipelines/companies/rows?limit=4");
    expect(first.status).toBe(200);
    expect(first.json).toMatchObject({
      key: "id",
      inputs: ["name"],
      outputs: [
        { name: "industry", type: "text" },
        { name: "employees", type: "integer" },
      ],
      review_below: 0.6,
      next: "4",
    });
    expect(first.json.rows.map((r) => r.key)).toEqual(["1", "2", "3", "4"]);
    expect(first.json.rows[0]).toMatchObject({
      status: "done",
      inputs: { name: "company 1" },
      values: { industry: "industry 1", employees: 10 },
      columns: { industry: { confidence: 0.5, stage: "profile" } },
      under_review: ["industry"],
    });
    const second = await call("GET", "/v1/pipelines/companies/rows?limit=4&after=4");
    expect(second.json.rows.map((r) => r.key)).toEqual(["5", "6"]);
    expect(second.json.next).toBeNull();

    const review = await call("GET", "/v1/pipelines/companies/rows?review=1&limit=2");
    expect(review.json.rows.map((r) => r.key)).toEqual(["1", "3"]);
    expect(review.json.next).toBe("3");
    const below = await call("GET", "/v1/pipelines/companies/rows?below=0.6&after=3");
    expect(below.json.rows.map((r) => r.key)).toEqual(["5"]);
    expect(
      (await call("GET", "/v1/pipelines/companies/rows?status=pending")).json.rows,
    ).toHaveLength(0);
    expect(
      (await call("GET", "/v1/pipelines/companies/rows?null=industry")).json.rows,
    ).toHaveLength(0);

    for (const [query, message] of [
      ["status=lost", /status must be one of/],
      ["null=enrichment_state", /null must name an input or output: name, industry, employees/],
      ["below=2", /below must be a confidence/],
      ["after=abc", /"abc" is not a key|not a key of companies/],
    ] as const) {
      const answer = await call("GET", `/v1/pipelines/companies/rows?${query}`);
      expect(answer.status, query).toBe(400);
      expect(answer.json.error).toMatch(message);
    }
    expect((await call("GET", "/v1/pipelines/nope/rows")).status).toBe(404);
  });

  it("shows one row with what each stage answered, without its research data", async () => {
    const { status, json } = await call("GET", "/v1/pipelines/companies/rows/2");
    expect(status).toBe(200);
    expect(json.state.stages.profile).toMatchObject({
      status: "ok",
      output: { industry: { value: "industry 2", confidence: 0.9 } },
    });
    expect(json.state.stages.profile?.calls).toBeUndefined();
    expect((await call("GET", "/v1/pipelines/companies/rows/999")).status).toBe(404);
  });
});

describe("review routes", () => {
  it("approves, edits and rejects values; the queue and the table follow", async () => {
    const queueBefore = await call("GET", "/v1/review-queue?pipeline=companies");
    expect((queueBefore.json as unknown as Json[]).map((e) => e.row_key)).toEqual(["1", "3", "5"]);
    expect((queueBefore.json as unknown as Json[])[0]).toMatchObject({
      pipeline: "companies",
      column_name: "industry",
      value: "industry 1",
      confidence: 0.5,
    });

    const approved = await call("POST", "/v1/pipelines/companies/rows/1/review", {
      column: "industry",
      action: "approve",
      by: "ann",
    });
    expect(approved.status).toBe(200);
    expect(approved.json.provenance).toMatchObject({
      origin: "human",
      confidence: 1,
      review: { action: "approved", by: "ann" },
    });
    const edited = await call("POST", "/v1/pipelines/companies/rows/3/review", {
      column: "industry",
      action: "edit",
      value: "shipbuilding",
    });
    expect(edited.json.provenance).toMatchObject({
      value: "shipbuilding",
      review: { action: "edited", previous: { value: "industry 3" } },
    });
    const rejected = await call("POST", "/v1/pipelines/companies/rows/5/review", {
      column: "industry",
      action: "reject",
    });
    expect(rejected.json.provenance).toMatchObject({ value: null, reason: "rejected" });

    const rows = await h.query<{ id: number; industry: string | null; enrichment_status: string }>(
      "select id, industry, enrichment_status from companies where id in (1, 3, 5) order by id",
    );
    expect(rows).toEqual([
      { id: 1, industry: "industry 1", enrichment_status: "done" },
      { id: 3, industry: "shipbuilding", enrichment_status: "done" },
      { id: 5, industry: null, enrichment_status: "done" },
    ]);
    expect((await call("GET", "/v1/review-queue")).json).toEqual([]);
  });

  it("answers a wrong review with 400 or 404, naming what is wrong", async () => {
    const review = (key: string, body: unknown) =>
      call("POST", `/v1/pipelines/companies/rows/${key}/review`, body);
    const cases: [string, unknown, number, RegExp][] = [
      ["2", { column: "industry", action: "nuke" }, 400, /"action" must be one of approve/],
      ["2", { action: "approve" }, 400, /"column" must name an output: industry, employees/],
      ["2", { column: "name", action: "edit", value: "x" }, 400, /not an output of pipeline/],
      ["2", { column: "employees", action: "edit", value: "lots" }, 400, /lots/],
      ["2", { column: "employees", action: "edit" }, 400, /edit needs a value/],
      ["999", { column: "industry", action: "approve" }, 404, /no row with id = 999/],
      ["abc", { column: "industry", action: "approve" }, 400, /abc/],
    ];
    for (const [key, body, status, message] of cases) {
      const answer = await review(key, body);
      expect(answer.status, JSON.stringify(body)).toBe(status);
      expect(answer.json.error).toMatch(message);
    }
    const form = await fetch(base + "/v1/pipelines/companies/rows/2/review", {
      method: "POST",
      headers: { "content-type": "text/plain" },
      body: '{"column":"industry","action":"approve"}',
    });
    expect(form.status).toBe(415);
  });

  it("needs the bearer token when tokens are configured", async () => {
    const runtime = h.app.runtime;
    const url = await serve({
      ...runtime,
      config: { ...runtime.config, api: { ...runtime.config.api, tokens: [TOKEN] } },
    });
    const body = { column: "employees", action: "approve" };
    const path = "/v1/pipelines/companies/rows/2/review";
    expect((await call("POST", path, body, {}, url)).status).toBe(401);
    expect((await call("POST", path, body, { authorization: "Bearer wrong" }, url)).status).toBe(
      401,
    );
    const ok = await call("POST", path, body, { authorization: `Bearer ${TOKEN}` }, url);
    expect(ok.status).toBe(200);
    expect(ok.json.provenance.review?.action).toBe("approved");
  });

  it("reprocesses one row", async () => {
    const answer = await call("POST", "/v1/pipelines/companies/rows/6/reprocess");
    expect(answer.json).toEqual({ pipeline: "companies", key: "6", reprocessed: 1 });
    const [row] = await h.query<{ enrichment_status: string; enrichment_state: RowState }>(
      "select enrichment_status, enrichment_state from companies where id = 6",
    );
    expect(row!.enrichment_status).toBe("pending");
    expect(row!.enrichment_state.reset?.reason).toBe("reprocess button");
    expect((await call("POST", "/v1/pipelines/companies/rows/999/reprocess")).status).toBe(404);
  });

  it("watches rows named one by one with key=, so a key may hold a comma", async () => {
    const controller = new AbortController();
    const res = await fetch(base + "/v1/pipelines/companies/row-events?key=2&key=4&keys=6", {
      signal: controller.signal,
    });
    const reader = res.body!.getReader();
    let text = "";
    while (!text.includes("\n\n")) {
      const { value } = (await reader.read()) as { value?: Uint8Array };
      text += new TextDecoder().decode(value);
    }
    controller.abort();
    const ready = JSON.parse(/event: ready\ndata: (.*)\n/.exec(text)?.[1] ?? "{}") as {
      keys: string[];
    };
    expect([...ready.keys].sort()).toEqual(["2", "4", "6"]);
  });

  it("streams a watched row's change as a server-sent event", async () => {
    const controller = new AbortController();
    const res = await fetch(base + "/v1/pipelines/companies/row-events?keys=2,4", {
      signal: controller.signal,
    });
    expect(res.headers.get("content-type")).toBe("text/event-stream");
    const decoder = new TextDecoder();
    const stream = res.body!.getReader();
    let text = "";
    const until = async (marker: string) => {
      while (!text.includes(marker)) {
        const { value, done } = (await stream.read()) as { value?: Uint8Array; done: boolean };
        if (done) throw new Error(`stream ended before ${marker}: ${text}`);
        text += decoder.decode(value, { stream: true });
      }
    };
    try {
      await until("event: ready");
      await call("POST", "/v1/pipelines/companies/rows/4/review", {
        column: "employees",
        action: "edit",
        value: 4000,
      });
      await until("event: rows");
      await until("\n\n");
      const data = /event: rows\ndata: (.*)\n/.exec(text)?.[1];
      const rows = JSON.parse(data ?? "[]") as RowJson[];
      expect(rows.map((r) => r.key)).toEqual(["4"]);
      expect(rows[0]).toMatchObject({
        values: { employees: 4000 },
        columns: { employees: { origin: "human" } },
      });
    } finally {
      controller.abort();
    }
  });
});
