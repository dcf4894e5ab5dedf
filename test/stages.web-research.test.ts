import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RowState } from "../src/pipeline/row-state.ts";
import type { CrawlData } from "../src/stages/crawl-stage.ts";
import type { ExtractData } from "../src/stages/extract-stage.ts";
import type { SearchData } from "../src/stages/search-stage.ts";
import type { SelectData } from "../src/stages/select-stage.ts";
import { createMetrics, type Metrics } from "../src/metrics/create-metrics.ts";
import type { QueriesData } from "../src/stages/queries-stage.ts";
import {
  answerRows,
  reply,
  rowIdsInPrompt,
  rowSection,
  startFakeLlm,
  type FakeLlm,
} from "./support/fake-llm-server.ts";
import { parseSamples, sum } from "./support/prometheus-text.ts";
import { startFixtureSite, type FixtureSite } from "./support/fixture-site.ts";
import { startHarness, type Harness } from "./support/gleaner-harness.ts";

/**
 * The web research stages end to end on real PostgreSQL: queries → search (a Serper-shaped
 * server on loopback) → select → crawl (the fixture site) → extract (structured data, then the
 * fake LLM), with provenance, caches and the crawler's refusals checked in the rows' state.
 */

interface SerperFake {
  url: string;
  queries: string[];
  close(): Promise<void>;
}

/** A Serper API whose answers list fixture-site pages for any query naming "Fixture Works". */
async function startSerper(site: FixtureSite): Promise<SerperFake> {
  const queries: string[] = [];
  const server: Server = createServer((req, res) => {
    let raw = "";
    req.on("data", (c: Buffer) => (raw += c.toString()));
    req.on("end", () => {
      const q = String((JSON.parse(raw) as { q?: string }).q ?? "");
      queries.push(q);
      const organic = /fixture works/i.test(q)
        ? [
            { title: "Page 3", link: site.url("/page/3"), snippet: "unrelated" },
            {
              title: "About Fixture Works",
              link: site.url("/about.html"),
              snippet: "Fixture Works facts",
            },
            { title: "Fixture Works secret", link: site.url("/private/secret.html"), snippet: "x" },
            { title: "Fixture Works metadata", link: site.url("/to-metadata"), snippet: "x" },
          ]
        : [];
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ organic }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    queries,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

interface Row {
  id: number;
  name: string;
  founded: number | null;
  employees: number | null;
  industry: string | null;
  enrichment_status: string;
  enrichment_state: RowState;
}

let site: FixtureSite;
let serper: SerperFake;
let llm: FakeLlm;
let h: Harness;
let metrics: Metrics;

beforeAll(async () => {
  site = await startFixtureSite();
  serper = await startSerper(site);
  llm = await startFakeLlm();
  const extract = answerRows((id, prompt) => {
    const section = rowSection(prompt, id);
    const source = /sources: (S\d+)/.exec(section)?.[1] ?? "S1";
    return { industry: { value: "Fixtures", confidence: 0.9, sources: [source] } };
  });
  llm.handle((req) => {
    // The queries and select helpers of the `planned` pipeline; the rest is extraction.
    if (req.prompt.includes("search queries that would find pages"))
      return reply.json({
        rows: rowIdsInPrompt(req.prompt).map((id) => ({
          id,
          queries: [
            { query: "Fixture Works annual report", category: "facts", priority: 2 },
            { query: "Fixture Works official site", category: "official_site", priority: 1 },
          ],
        })),
      });
    if (req.prompt.includes("list the numbers of the")) return reply.status(500);
    return extract(req);
  });
  h = await startHarness(
    "web_research",
    `
llm:
  backends:
    - { name: main, base_url: ${llm.url}, model: fake, timeout: 5s }
search:
  providers:
    web: { provider: serper, base_url: ${serper.url}, api_key: test-key-123, timeout: 5s }
crawl:
  allow: [127.0.0.1]
  per_host_delay: 0ms
  javascript: never
pipelines:
  orgs:
    table: public.orgs
    inputs: [name]
    outputs:
      founded: { type: integer, description: "Year founded" }
      employees: { type: integer, description: "Number of employees" }
      industry: { type: text, description: "Industry" }
    retry: { max_attempts: 3, delays: [1m] }
    stages:
      - { name: plan, kind: queries, templates: ["{{name}}", "{{name}} company"], search_context: "" }
      - { name: find, kind: search, provider: web }
      - { name: choose, kind: select, max_urls: 4 }
      - { name: fetch, kind: crawl, max_depth: 0 }
      - { name: read, kind: extract, backends: [main], outputs: [founded, employees, industry] }
  structured_only:
    table: public.orgs_structured
    inputs: [name]
    outputs:
      founded: { type: integer, description: "Year founded" }
      industry: { type: text, description: "Industry" }
    stages:
      - { name: plan, kind: queries }
      - { name: find, kind: search, provider: web }
      - { name: choose, kind: select }
      - { name: fetch, kind: crawl, max_depth: 0 }
      - { name: read, kind: extract, outputs: [founded, industry] }
  planned:
    table: public.orgs_planned
    inputs: [name]
    outputs:
      founded: { type: integer, description: "Year founded" }
    stages:
      - name: plan
        kind: queries
        templates: ["{{name}} {{search_context}}"]
        search_context: "founding year"
        llm: { backends: [main], count: 2 }
        max_queries: 3
      - { name: find, kind: search, provider: web }
      - { name: choose, kind: select, max_urls: 2, llm: { backends: [main] } }
      - { name: fetch, kind: crawl, max_depth: 0 }
      - { name: read, kind: extract, outputs: [founded] }
`,
  );
  metrics = createMetrics(h.app.runtime);
});

afterAll(async () => {
  metrics?.close();
  await h?.close();
  await Promise.all([llm?.close(), serper?.close(), site?.close()]);
});

describe("web research stages", () => {
  it("fills structured values free, asks the LLM the rest, and keeps the sources", async () => {
    await h.query("insert into orgs (name) values ('Fixture Works')");
    await h.drain();
    const [row] = await h.query<Row>("select * from orgs");
    expect(row?.enrichment_status).toBe("done");
    expect(row?.founded).toBe(1998);
    expect(row?.employees).toBe(42);
    expect(row?.industry).toBe("Fixtures");

    const state = row?.enrichment_state as RowState;
    const about = site.url("/about.html");
    expect(state.columns?.founded).toMatchObject({ origin: "json-ld", sources: [about] });
    expect(state.columns?.founded?.model).toBeUndefined();
    expect(state.columns?.industry).toMatchObject({ origin: "llm", model: "fake" });
    expect(state.columns?.industry?.sources?.length).toBe(1);

    const search = state.stages?.find?.data as SearchData;
    expect(search.results.map((r) => r.url)).toContain(about);
    const select = state.stages?.choose?.data as SelectData;
    expect(select.urls[0]?.url).toBe(about);
    const crawl = state.stages?.fetch?.data as CrawlData;
    expect(crawl.pages.map((p) => p.url)).toContain(about);
    // robots.txt disallows /private/, and the redirect leads to the metadata address.
    const refused = Object.fromEntries(
      crawl.failures.map((f) => [new URL(f.url).pathname, f.class]),
    );
    expect(refused["/private/secret.html"]).toBe("robots_disallowed");
    expect(refused["/to-metadata"]).toBe("ssrf_refused");
    expect(site.hits("/private/secret.html")).toBe(0);
    const extract = state.stages?.read?.data as ExtractData;
    expect(extract.structured).toEqual({ founded: about, employees: about });
    expect(extract.prompt_urls.length).toBeGreaterThan(0);

    // Only the missing column was asked, with the pages' text as numbered sources.
    const calls = llm.requests.filter((r) => r.path.endsWith("/chat/completions"));
    expect(calls).toHaveLength(1);
    expect(calls[0]?.prompt).toContain("- industry (text)");
    expect(calls[0]?.prompt).not.toContain("- founded (integer)");
    expect(calls[0]?.prompt).toMatch(/\[S1\] http:\/\/127\.0\.0\.1/);

    // The page cache holds the text; the row's state only references it.
    const [cached] = await h.query<{ markdown: string; structured: unknown }>(
      "select markdown, structured from gleaner.page_cache where url = $1",
      [about],
    );
    expect(cached?.markdown).toContain("Founded in 1998");
    expect(JSON.stringify(state)).not.toContain("Founded in 1998, 42 people");
  });

  it("reprocessing pays for no search and fetches no page again", async () => {
    const searches = serper.queries.length;
    const fetched = site.hits("/about.html");
    const [before] = await h.query<Row>("select * from orgs");
    await h.query("update orgs set industry = null");
    await h.drain();
    const [row] = await h.query<Row>("select * from orgs");
    expect(row?.industry).toBe("Fixtures");
    expect(serper.queries.length).toBe(searches);
    expect(site.hits("/about.html")).toBe(fetched);
    // The crawl's record is reused as it was (its inputs did not change); only extract ran.
    expect(row?.enrichment_state.stages?.fetch).toEqual(before?.enrichment_state.stages?.fetch);
    expect(row?.enrichment_state.stages?.read?.finished_at).not.toBe(
      before?.enrichment_state.stages?.read?.finished_at,
    );
  });

  it("makes a query shared by several rows once", async () => {
    await h.query(
      "insert into orgs (name) values ('Fixture Works Twin'), ('Fixture Works Twin'), ('Fixture Works Twin')",
    );
    await h.drain();
    const twins = await h.query<Row>("select * from orgs where name = 'Fixture Works Twin'");
    expect(twins.map((r) => r.enrichment_status)).toEqual(["done", "done", "done"]);
    expect(serper.queries.filter((q) => q === "Fixture Works Twin")).toHaveLength(1);
    expect(serper.queries.filter((q) => q === "Fixture Works Twin company")).toHaveLength(1);
  });

  it("without an LLM, leaves what structured data cannot answer NULL and says why", async () => {
    await h.query("insert into orgs_structured (name) values ('Fixture Works')");
    await h.drain();
    const [row] = await h.query<Row>("select * from orgs_structured");
    expect(row?.founded).toBe(1998);
    expect(row?.industry).toBeNull();
    expect(row?.enrichment_state.columns?.industry?.reason).toMatch(/no LLM backend/);
  });

  it("plans queries with the LLM first, by priority, then the templates; a failed LLM ranking keeps the keyword one", async () => {
    await h.query("insert into orgs_planned (name) values ('Fixture Works')");
    await h.drain();
    const [row] = await h.query<Row>("select * from orgs_planned");
    expect(row?.founded).toBe(1998);
    const planned = row?.enrichment_state.stages?.plan?.data as QueriesData;
    expect(planned.queries).toEqual([
      {
        query: "Fixture Works official site",
        category: "official_site",
        priority: 1,
        origin: "llm",
      },
      { query: "Fixture Works annual report", category: "facts", priority: 2, origin: "llm" },
      {
        query: "Fixture Works founding year",
        category: "template",
        priority: 1,
        origin: "template",
      },
    ]);
    // Every planned query was asked of the search API.
    for (const q of planned.queries) expect(serper.queries).toContain(q.query);
    const chosen = row?.enrichment_state.stages?.choose?.data as SelectData;
    expect(chosen.llm_error).toMatch(/^server_error/);
    expect(chosen.urls).toHaveLength(2);
    expect(chosen.urls[0]?.url).toBe(site.url("/about.html"));
  });

  it("counts searches, pages and refusals in /metrics", async () => {
    const samples = parseSamples(await metrics.registry.metrics());
    expect(
      sum(samples, "gleaner_search_requests_total", { provider: "web", outcome: "call" }),
    ).toBeGreaterThan(0);
    expect(
      sum(samples, "gleaner_search_requests_total", { provider: "web", outcome: "hit" }),
    ).toBeGreaterThan(0);
    expect(
      sum(samples, "gleaner_crawl_pages_total", { path: "fetch", outcome: "ok" }),
    ).toBeGreaterThan(0);
    expect(
      sum(samples, "gleaner_crawl_pages_total", { path: "cache", outcome: "ok" }),
    ).toBeGreaterThan(0);
    expect(sum(samples, "gleaner_crawl_bytes_total", { path: "fetch" })).toBeGreaterThan(0);
    expect(sum(samples, "gleaner_crawl_refusals_total", { reason: "robots" })).toBeGreaterThan(0);
    expect(sum(samples, "gleaner_crawl_refusals_total", { reason: "ssrf" })).toBeGreaterThan(0);
  });
});
