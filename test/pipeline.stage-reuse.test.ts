import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openGleaner, type Gleaner } from "../src/app/open-gleaner.ts";
import { parseConfig } from "../src/config/load-config.ts";
import type { RowState, StageRecord } from "../src/pipeline/row-state.ts";
import { reprocessRows } from "../src/sql/reprocess-rows.ts";
import { drain } from "../src/worker/drain.ts";
import {
  answerRows,
  rowSection,
  rowText,
  startFakeLlm,
  type FakeLlm,
} from "./support/fake-llm-server.ts";
import { startFixtureSite, type FixtureSite } from "./support/fixture-site.ts";
import { quietLogger, startHarness, type Harness } from "./support/gleaner-harness.ts";

/**
 * Stage reuse across resets, on real PostgreSQL with the fake LLM, a Serper-shaped search API
 * and the fixture site on loopback. Every cache is off (LLM answers, searches, pages), so the
 * requests those servers receive say exactly which stages ran: a stage whose recipe and inputs
 * did not change is not run again, whatever the reset.
 */

interface SerperFake {
  url: string;
  queries: string[];
  close(): Promise<void>;
}

/** A Serper API whose answers list the fixture site's about page for any query. */
async function startSerper(site: FixtureSite): Promise<SerperFake> {
  const queries: string[] = [];
  const server: Server = createServer((req, res) => {
    let raw = "";
    req.on("data", (c: Buffer) => (raw += c.toString()));
    req.on("end", () => {
      queries.push(String((JSON.parse(raw) as { q?: string }).q ?? ""));
      res.writeHead(200, { "content-type": "application/json" });
      res.end(
        JSON.stringify({
          organic: [
            { title: "About Fixture Works", link: site.url("/about.html"), snippet: "facts" },
            { title: "Page 3", link: site.url("/page/3"), snippet: "unrelated" },
            { title: "Page 4", link: site.url("/page/4"), snippet: "unrelated" },
          ],
        }),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    queries,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

let site: FixtureSite;
let serper: SerperFake;
let llm: FakeLlm;
let h: Harness;
/** Calls to the fake LLM per stage (the answer schema is named after the stage). */
let calls: string[] = [];
/** What the `sa` stage answers: `a` and this suffix. */
let aSuffix = "";

const config = (bPrompt = "B of {{a}}", maxUrls = 3) => `
llm:
  cache_ttl: 0s
  backends:
    - { name: fake, base_url: ${llm.url}, model: fake, timeout: 10s }
search:
  cache_ttl: 0s
  providers:
    web: { provider: serper, base_url: ${serper.url}, api_key: test-key-123, timeout: 5s }
crawl:
  allow: [127.0.0.1]
  per_host_delay: 0ms
  javascript: never
  cache_ttl: 0s
pipelines:
  chain:
    table: public.chain
    inputs: [name]
    outputs:
      a: { type: text, description: "a" }
      b: { type: text, description: "b" }
      c: { type: text, description: "c" }
      e: { type: text, description: "e" }
      d: { type: text, description: "d" }
    stages:
      - { name: sa, kind: llm, backends: [fake], prompt: "A of {{name}}", outputs: [a] }
      - { name: sb, kind: llm, backends: [fake], prompt: "${bPrompt}", outputs: [b] }
      - { name: sc, kind: llm, backends: [fake], prompt: "C of {{b}}", outputs: [c] }
      - { name: se, kind: llm, backends: [fake], prompt: "E of {{name}}", outputs: [e] }
      - { name: sd, kind: llm, backends: [fake], prompt: "D of {{name}}", outputs: [d] }
  orgs:
    table: public.orgs
    inputs: [name]
    outputs:
      founded: { type: integer, description: "Year founded" }
      employees: { type: integer, description: "Number of employees" }
      industry: { type: text, description: "Industry" }
    stages:
      - { name: plan, kind: queries, templates: ["{{name}}", "{{name}} company"] }
      - { name: find, kind: search, provider: web }
      - { name: choose, kind: select, max_urls: ${maxUrls} }
      - { name: fetch, kind: crawl, max_depth: 0 }
      - { name: read, kind: extract, backends: [fake], outputs: [founded, employees, industry] }
`;

beforeAll(async () => {
  site = await startFixtureSite();
  serper = await startSerper(site);
  llm = await startFakeLlm();
  const extract = answerRows((id, prompt) => {
    const source = /sources: (S\d+)/.exec(rowSection(prompt, id))?.[1] ?? "S1";
    return { industry: { value: "Fixtures", confidence: 0.9, sources: [source] } };
  });
  // Each chain stage fills its one output with what it read: `<output>:<row text>`.
  const chain = answerRows((id, prompt) => {
    const field = /^- ([a-z]+) \(/m.exec(prompt)?.[1] ?? "?";
    const suffix = field === "a" ? aSuffix : "";
    return { [field]: { value: `${field}${suffix}:${rowText(prompt, id)}`, confidence: 0.9 } };
  });
  llm.handle((req) => {
    const format = req.responseFormat as { json_schema?: { name?: string } } | undefined;
    const stage = (format?.json_schema?.name ?? "").replace(/_answer$/, "");
    calls.push(stage);
    return stage === "read" ? extract(req) : chain(req);
  });
  h = await startHarness("stage_reuse", config());
});

afterAll(async () => {
  await h?.close();
  await Promise.all([llm?.close(), serper?.close(), site?.close()]);
});

async function stagesOf(table: string): Promise<Record<string, StageRecord>> {
  const [row] = await h.query<{ enrichment_state: RowState }>(
    `select enrichment_state from ${table}`,
  );
  return row?.enrichment_state.stages ?? {};
}

/** The stages whose records are not the ones given (they ran again). */
function ranAgain(
  before: Record<string, StageRecord>,
  after: Record<string, StageRecord>,
): string[] {
  return Object.keys(after).filter(
    (name) => JSON.stringify(after[name]) !== JSON.stringify(before[name]),
  );
}

/** Another Gleaner process with this config, run until nothing is due. */
async function drainWith(text: string, before?: (app: Gleaner) => Promise<void>): Promise<void> {
  const app = await openGleaner(
    parseConfig(text, { env: { ...process.env, DATABASE_URL: h.testDb.url } }),
    { env: { DATABASE_URL: h.testDb.url }, logger: quietLogger, migrate: true },
  );
  try {
    await before?.(app);
    const result = await drain({
      runtime: app.runtime,
      url: h.testDb.url,
      logger: quietLogger,
      timeoutMs: 30_000,
    });
    if (result.timedOut) throw new Error(`drain timed out: ${JSON.stringify(result.progress)}`);
  } finally {
    await app.close();
  }
}

describe("stage reuse across resets", () => {
  it("re-runs only the stage filling the output a user set to NULL", async () => {
    await h.query("insert into chain (name) values ('Acme')");
    await h.drain();
    expect(calls.sort()).toEqual(["sa", "sb", "sc", "sd", "se"]);
    const [row] = await h.query<Record<string, string>>("select a, b, c from chain");
    expect(row).toEqual({
      a: "a:A of Acme",
      b: "b:B of a:A of Acme",
      c: "c:C of b:B of a:A of Acme",
    });

    const before = await stagesOf("chain");
    calls = [];
    await h.query("update chain set c = null");
    await h.drain();
    expect(calls).toEqual(["sc"]);
    expect(ranAgain(before, await stagesOf("chain"))).toEqual(["sc"]);
    const [again] = await h.query<Record<string, string>>("select c, enrichment_status from chain");
    expect(again).toEqual({ c: "c:C of b:B of a:A of Acme", enrichment_status: "done" });
  });

  it("re-runs the stages after it only when what they read changed", async () => {
    // Same answer: the stage reading `a` reads what it read before.
    calls = [];
    await h.query("update chain set a = null");
    await h.drain();
    expect(calls).toEqual(["sa"]);

    // Another answer: `sb` reads it, and `sc` reads what `sb` makes of it; `se`, `sd` do not.
    aSuffix = "2";
    calls = [];
    const before = await stagesOf("chain");
    await h.query("update chain set a = null");
    await h.drain();
    expect(calls).toEqual(["sa", "sb", "sc"]);
    expect(ranAgain(before, await stagesOf("chain")).sort()).toEqual(["sa", "sb", "sc"]);
    const [row] = await h.query<Record<string, string>>("select a, b, c from chain");
    expect(row).toEqual({
      a: "a2:A of Acme",
      b: "b:B of a2:A of Acme",
      c: "c:C of b:B of a2:A of Acme",
    });
  });

  it("after a change to one stage's prompt, re-runs it and the stages that read it, not the ones before", async () => {
    calls = [];
    const before = await stagesOf("chain");
    // The row becomes due because a user cleared `d`: `sd` answers again, whatever the config.
    await h.query("update chain set d = null");
    await drainWith(config("B, again, of {{a}}"));
    expect(calls.sort()).toEqual(["sb", "sc", "sd"]);
    expect(ranAgain(before, await stagesOf("chain")).sort()).toEqual(["sb", "sc", "sd"]);
    const [row] = await h.query<Record<string, string>>("select b from chain");
    expect(row?.b).toBe("b:B, again, of a2:A of Acme");
  });

  it("re-runs only extract when a user clears one of its outputs: research is reused", async () => {
    await h.query("insert into orgs (name) values ('Fixture Works')");
    await h.drain();
    const [first] = await h.query<Record<string, unknown>>("select founded, industry from orgs");
    expect(first).toEqual({ founded: 1998, industry: "Fixtures" });
    const searches = serper.queries.length;
    const requests = site.requests.length;
    expect(searches).toBeGreaterThan(0);
    const before = await stagesOf("orgs");

    calls = [];
    await h.query("update orgs set industry = null");
    await h.drain();
    expect(serper.queries.length).toBe(searches);
    expect(site.requests.length).toBe(requests);
    expect(calls).toEqual(["read"]);
    expect(ranAgain(before, await stagesOf("orgs"))).toEqual(["read"]);
    const [row] = await h.query<Record<string, unknown>>("select industry from orgs");
    expect(row?.industry).toBe("Fixtures");
  });

  it("after a change to one research stage, reprocessing re-runs it and what follows, not what precedes", async () => {
    const searches = serper.queries.length;
    const fetched = site.hits("/about.html");
    const before = await stagesOf("orgs");
    calls = [];
    await drainWith(config(undefined, 2), async (app) => {
      const pipeline = app.runtime.pipelines.get("orgs")?.pipeline;
      if (!pipeline) throw new Error("no orgs pipeline");
      expect(await reprocessRows(app.database.db, pipeline, { status: "done" })).toBe(1);
    });
    // The queries and the search results are reused: no search was made.
    expect(serper.queries.length).toBe(searches);
    expect(site.hits("/about.html")).toBe(fetched + 1);
    const after = await stagesOf("orgs");
    expect(ranAgain(before, after).sort()).toEqual(["choose", "fetch", "read"]);
    expect(calls).toEqual(["read"]);
  });

  it("re-runs everything when an input changes", async () => {
    const searches = serper.queries.length;
    const before = await stagesOf("orgs");
    calls = [];
    await h.query("update orgs set name = 'Fixture Works Ltd'");
    await h.drain();
    expect(serper.queries).toContain("Fixture Works Ltd company");
    expect(serper.queries.length).toBe(searches + 2);
    const after = await stagesOf("orgs");
    expect(ranAgain(before, after).sort()).toEqual(["choose", "fetch", "find", "plan", "read"]);
    // What the first stage read is another input: its record says so.
    expect(after.plan?.input_hash).toBeDefined();
    expect(after.plan?.input_hash).not.toBe(before.plan?.input_hash);
    expect(after.plan?.fingerprint).toBe(before.plan?.fingerprint);
  });
});
