import { Registry } from "prom-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApiRouter } from "../src/api/api-router.ts";
import { startHttpServer } from "../src/http/start-http-server.ts";
import { startFakeLlm, type FakeLlm } from "./support/fake-llm-server.ts";
import { startHarness, type Harness } from "./support/gleaner-harness.ts";

/**
 * Ad-hoc requests against real PostgreSQL: a refused one leaves nothing behind, and identical
 * ones share one pipeline and one table however many times (and however concurrently) they come.
 */

let llm: FakeLlm;
let h: Harness;
let base: string;
let closeServer: () => Promise<void>;

interface Answer {
  status: number;
  json: { error: string; id: string; pipeline: string; total: number };
}

async function submit(body: unknown): Promise<Answer> {
  const res = await fetch(base + "/v1/jobs", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  return { status: res.status, json: (await res.json()) as Answer["json"] };
}

/** Tables in the ad-hoc schema and recorded ad-hoc pipelines. */
async function adhocState(): Promise<{ tables: string[]; pipelines: string[] }> {
  const tables = await h.query<{ name: string }>(
    "select table_name as name from information_schema.tables where table_schema = 'gleaner_adhoc' order by 1",
  );
  const pipelines = await h.query<{ name: string }>(
    "select name from gleaner.adhoc_pipelines order by 1",
  );
  return { tables: tables.map((t) => t.name), pipelines: pipelines.map((p) => p.name) };
}

const sentiment = {
  inputs: ["title"],
  outputs: { sentiment: { type: "text", description: "positive or negative" } },
  search_context: "Customer reviews of kettles",
};

beforeAll(async () => {
  llm = await startFakeLlm();
  h = await startHarness(
    "api_adhoc",
    `
llm:
  backends: [{ name: fake, base_url: ${llm.url}, model: fake }]
api: { max_rows_per_job: 5 }
pipelines:
  companies:
    table: companies
    inputs: [name]
    outputs: { industry: { type: text, description: "Primary industry" } }
    stages:
      - { name: profile, kind: llm, backends: [fake], prompt: "About {{name}}", outputs: [industry] }
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

describe("ad-hoc requests", () => {
  it("leave no table and no pipeline behind when the request is refused", async () => {
    const refusals: [unknown, number, RegExp][] = [
      // Rows that do not match the request's inputs.
      [{ request: sentiment, rows: [{ headline: "x" }] }, 400, /rows\[0\]\.headline/],
      [{ request: sentiment, rows: [] }, 400, /non-empty array/],
      // More rows than a job may carry.
      [
        { request: sentiment, rows: Array.from({ length: 6 }, (_, i) => ({ title: `t${i}` })) },
        413,
        /limit of 5 per job/,
      ],
      // Rows the database refuses on insert: text cannot hold a NUL character.
      [{ request: sentiment, rows: [{ title: "ok" }, { title: "a\u0000b" }] }, 400, /does not fit/],
      // Names and text JavaScript or PostgreSQL cannot hold.
      [
        `{"request": {"inputs": ["title"], "outputs": {"__proto__": {"type": "text", "description": "x"}}},
          "rows": [{"title": "t"}]}`,
        400,
        /request\.outputs: "__proto__" cannot name a column/,
      ],
      [
        { request: { ...sentiment, search_context: "nul \u0000" }, rows: [{ title: "t" }] },
        400,
        /NUL character/,
      ],
    ];
    for (const [body, status, message] of refusals) {
      const answer = await submit(body);
      expect({ body, status: answer.status }).toEqual({ body, status });
      expect(answer.json.error).toMatch(message);
      expect(await adhocState()).toEqual({ tables: [], pipelines: [] });
    }
  });

  it("share one pipeline and one table when identical, however they are written", async () => {
    const first = await submit({ request: sentiment, rows: [{ title: "great kettle" }] });
    expect(first.status).toBe(201);
    // The same definition: other key order, other whitespace around the context.
    const same = await submit(
      `{"rows": [{"title": "awful kettle"}], "request": {"search_context": "  Customer reviews of kettles\\n",
        "outputs": {"sentiment": {"description": "positive or negative", "type": "text"}}, "inputs": ["title"]}}`,
    );
    expect(same.status).toBe(201);
    expect(same.json.pipeline).toBe(first.json.pipeline);
    // Many at once: still one.
    const burst = await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        submit({ request: sentiment, rows: [{ title: `kettle ${i}` }] }),
      ),
    );
    expect(burst.map((a) => a.status)).toEqual(Array(6).fill(201));
    expect(new Set(burst.map((a) => a.json.pipeline))).toEqual(new Set([first.json.pipeline]));
    expect(await adhocState()).toEqual({
      tables: [first.json.pipeline],
      pipelines: [first.json.pipeline],
    });
    const [rows] = await h.query<{ n: number }>(
      `select count(*)::int as n from gleaner_adhoc.${first.json.pipeline}`,
    );
    expect(rows?.n).toBe(8);

    // A different definition is a different pipeline.
    const other = await submit({
      request: { ...sentiment, search_context: "Customer reviews of toasters" },
      rows: [{ title: "toaster" }],
    });
    expect(other.status).toBe(201);
    expect(other.json.pipeline).not.toBe(first.json.pipeline);
    expect((await adhocState()).tables).toHaveLength(2);
  });

  it("keep their table when a later identical request is refused", async () => {
    const before = await adhocState();
    const refused = await submit({ request: sentiment, rows: [{ title: "a\u0000b" }] });
    expect(refused.status).toBe(400);
    expect(await adhocState()).toEqual(before);
    const accepted = await submit({ request: sentiment, rows: [{ title: "fine" }] });
    expect(accepted.status).toBe(201);
  });
});
