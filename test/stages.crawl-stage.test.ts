import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RowState } from "../src/pipeline/row-state.ts";
import type { CrawlData } from "../src/stages/crawl-stage.ts";
import { CHROMIUM_PATH, chromiumAvailable } from "./support/chromium.ts";
import {
  jsItemText,
  RESEARCH_BLOCKED_PREFIX,
  startFixtureSite,
  type FixtureSite,
} from "./support/fixture-site.ts";
import { makeDue, startHarness, type Harness } from "./support/gleaner-harness.ts";

/**
 * The crawl stage through real pipelines (harness, PostgreSQL, the fixture site's /research/
 * pages): depth, the three strategies, max_pages, the site boundary, url_input, failures kept
 * per URL, a row with no page at all, and the browser path for a page built by JavaScript.
 */

const browserAvailable = chromiumAvailable();

let site: FixtureSite;
/** A second site for failures that count against a host (the circuit breaker is per host). */
let down: FixtureSite;
let h: Harness;

interface Row {
  id: number;
  enrichment_status: string;
  enrichment_attempts: number;
  enrichment_next_at: Date | null;
  enrichment_state: RowState;
}

/** Every pipeline: a crawl stage reading the `website` input, then a structured-data extract. */
function pipeline(name: string, crawl: Record<string, unknown>): string {
  return `
  ${name}:
    table: public.${name}
    inputs: [name, website]
    outputs:
      ceo: { type: text, description: "Chief executive officer" }
    retry: { max_attempts: 3, delays: [1m] }
    # These tests count the crawl stage's own fetches: no escalation rung reads more.
    escalate: false
    stages:
      - ${JSON.stringify({ name: "fetch", kind: "crawl", url_input: "website", ...crawl })}
      - { name: read, kind: extract, outputs: [ceo] }`;
}

beforeAll(async () => {
  site = await startFixtureSite();
  down = await startFixtureSite();
  site.setRobots(`User-agent: *\nDisallow: /private/\nDisallow: ${RESEARCH_BLOCKED_PREFIX}\n`);
  h = await startHarness(
    "crawl_stage",
    `
crawl:
  allow: [127.0.0.1]
  per_host_delay: 0ms
  per_host_concurrency: 4
  javascript: never
  # Room for the first Chromium launch on a loaded 2-core machine.
  timeout: 15s
  browser: { executable_path: ${CHROMIUM_PATH}, contexts: 1 }
pipelines:${[
      pipeline("depth0", { strategy: "breadth_first", max_depth: 0, max_pages: 20 }),
      pipeline("depth1", { strategy: "breadth_first", max_depth: 1, max_pages: 20 }),
      pipeline("selective", { max_depth: 1, max_pages: 20, follow_keywords: ["leadership"] }),
      pipeline("bfs", { strategy: "breadth_first", max_depth: 2, max_pages: 4 }),
      pipeline("dfs", { strategy: "depth_first", max_depth: 2, max_pages: 4 }),
      pipeline("bfs_two", { strategy: "breadth_first", max_depth: 2, max_pages: 2 }),
      pipeline("dfs_two", { strategy: "depth_first", max_depth: 2, max_pages: 2 }),
      pipeline("failures", { strategy: "breadth_first", max_depth: 1 }),
      pipeline("only_seed", { max_depth: 0 }),
      pipeline("parallel", { strategy: "breadth_first", max_depth: 1, max_pages: 10 }),
      pipeline("js", { max_depth: 0, javascript: "auto" }),
    ].join("")}
`,
  );
});

afterAll(async () => {
  await h?.close();
  await Promise.all([site?.close(), down?.close()]);
});

/** A port on 127.0.0.1 nobody listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Inserts one row, runs the pipelines until idle, and returns the row. */
async function enrich(table: string, website: string): Promise<Row> {
  const [inserted] = await h.query<{ id: number }>(
    `insert into ${table} (name, website) values ('Acme Rockets', $1) returning id`,
    [website],
  );
  await h.drain();
  const [row] = await h.query<Row>(`select * from ${table} where id = $1`, [inserted?.id]);
  if (!row) throw new Error(`row of ${table} is gone`);
  return row;
}

function crawlOf(row: Row): CrawlData {
  const stage = row.enrichment_state.stages?.fetch;
  expect(stage?.status).toBe("ok");
  return stage?.data as CrawlData;
}

/** Page paths relative to the namespace: `/research/s/d1/about` → `about`. */
function names(ns: string, urls: readonly string[]): string[] {
  return urls.map((u) => new URL(u).pathname.replace(`/research/s/${ns}/`, ""));
}

describe("crawl stage: depth and site boundary", () => {
  it("fetches only the seed with max_depth 0", async () => {
    const row = await enrich("depth0", site.url("/research/s/d0/start"));
    const crawl = crawlOf(row);
    expect(crawl.pages.map((p) => [p.url, p.depth, p.status, p.path])).toEqual([
      [site.url("/research/s/d0/start"), 0, 200, "fetch"],
    ]);
    expect(crawl.pages[0]?.title).toBe("Acme Rockets");
    expect(crawl.failures).toEqual([]);
    expect(site.requests.filter((r) => r.path.startsWith("/research/s/d0/")).length).toBe(1);
  });

  it("follows the seed's links one level with max_depth 1, and no further", async () => {
    const row = await enrich("depth1", site.url("/research/s/d1/start"));
    const crawl = crawlOf(row);
    const seed = site.url("/research/s/d1/start");
    expect(crawl.pages[0]).toMatchObject({ url: seed, depth: 0 });
    expect(crawl.pages[0]?.via).toBeUndefined();
    const followed = crawl.pages.slice(1);
    expect(
      names(
        "d1",
        followed.map((p) => p.url),
      ).sort(),
    ).toEqual(
      [
        "about",
        "team",
        "careers",
        "news",
        "deep/1",
        "leaders",
        "board",
        "company-profile",
        "p/7",
      ].sort(),
    );
    for (const page of followed) expect(page).toMatchObject({ depth: 1, via: seed, status: 200 });
    // about#contact is the about page: fetched once.
    expect(site.hits("/research/s/d1/about")).toBe(1);
    // Links of depth-1 pages are not followed.
    expect(site.hits("/research/s/d1/about/history")).toBe(0);
    expect(site.hits("/research/s/d1/deep/2")).toBe(0);
    expect(crawl.failures).toEqual([]);
  });

  it("does not follow links to other hosts, even the same server under another name", async () => {
    const row = await enrich("depth1", site.url("/research/s/hosts/start"));
    const crawl = crawlOf(row);
    const everything = [...crawl.pages.map((p) => p.url), ...crawl.failures.map((f) => f.url)];
    expect(everything.filter((u) => !u.startsWith(site.origin))).toEqual([]);
    const localhost = site.requests.filter((r) =>
      String(r.headers.host ?? "").startsWith("localhost"),
    );
    expect(localhost).toEqual([]);
    expect(crawl.pages.length).toBe(10);
  });
});

describe("crawl stage: strategies", () => {
  it("selective follows links whose text or path names a fact page, a follow keyword or an output's word", async () => {
    const row = await enrich("selective", site.url("/research/s/sel/start"));
    const crawl = crawlOf(row);
    const followed = names(
      "sel",
      crawl.pages.filter((p) => p.depth === 1).map((p) => p.url),
    );
    // "About us", "Our team": fact page words; "Leadership": follow_keywords; "Executive
    // board": the output's description; "Read more" to /company-profile: the path's words.
    expect(followed).toEqual(
      expect.arrayContaining(["about", "team", "leaders", "board", "company-profile"]),
    );
    // "Careers", "Latest news", "Read the story" name nothing wanted.
    expect(followed).not.toContain("careers");
    expect(followed).not.toContain("news");
    expect(followed).not.toContain("deep/1");
    expect(site.hits("/research/s/sel/careers")).toBe(0);
    expect(site.hits("/research/s/sel/news")).toBe(0);
  });

  it('selective follows a "Who we are" link, "who" being one of its fact page words', async () => {
    const row = await enrich("selective", site.url("/research/s/who/start"));
    const followed = names(
      "who",
      crawlOf(row).pages.map((p) => p.url),
    );
    expect(followed).toContain("p/7");
  });

  it("breadth_first takes a page's links in order, all of a level before the next, up to max_pages", async () => {
    const row = await enrich("bfs", site.url("/research/s/bfs/t"));
    const crawl = crawlOf(row);
    expect(crawl.pages.map((p) => p.depth)).toEqual([0, 1, 1, 1]);
    expect(
      names(
        "bfs",
        crawl.pages.map((p) => p.url),
      ).sort(),
    ).toEqual(["t", "t/a", "t/b", "t/c"]);
    expect(site.requests.filter((r) => r.path.startsWith("/research/s/bfs/")).length).toBe(4);

    const two = crawlOf(await enrich("bfs_two", site.url("/research/s/bfs2/t")));
    expect(
      names(
        "bfs2",
        two.pages.map((p) => p.url),
      ),
    ).toEqual(["t", "t/a"]);
  });

  it("depth_first goes down the newest link first, up to max_pages", async () => {
    const two = crawlOf(await enrich("dfs_two", site.url("/research/s/dfs2/t")));
    // The last link found is taken first.
    expect(
      names(
        "dfs2",
        two.pages.map((p) => p.url),
      ),
    ).toEqual(["t", "t/c"]);

    const row = await enrich("dfs", site.url("/research/s/dfs/t"));
    const crawl = crawlOf(row);
    expect(crawl.pages.map((p) => p.depth)).toEqual([0, 1, 2, 2]);
    expect(
      names(
        "dfs",
        crawl.pages.map((p) => p.url),
      ).sort(),
    ).toEqual(["t", "t/c", "t/c/1", "t/c/2"]);
    for (const page of crawl.pages.filter((p) => p.depth === 2))
      expect(page.via).toBe(site.url("/research/s/dfs/t/c"));
    expect(site.requests.filter((r) => r.path.startsWith("/research/s/dfs/")).length).toBe(4);
  });

  it("fetches a row's followed pages in parallel, not one at a time", async () => {
    const row = await enrich("parallel", site.url("/research/s/par/hub"));
    const slow = crawlOf(row).pages.filter((p) => p.depth === 1);
    expect(slow.length).toBe(4);
    // A slow page is titled "together" when another was requested while it waited.
    expect(slow.filter((p) => p.title === "together").length).toBeGreaterThanOrEqual(2);
  });
});

describe("crawl stage: url_input and failures", () => {
  it("crawls a full http:// URL from url_input as given", async () => {
    const row = await enrich("only_seed", site.url("/research/s/plain/about"));
    const crawl = crawlOf(row);
    expect(crawl.pages.map((p) => p.url)).toEqual([site.url("/research/s/plain/about")]);
    expect(crawl.pages[0]?.title).toBe("About Acme Rockets");
  });

  it("puts https:// before a url_input value without a scheme", async () => {
    // The fixture speaks plain HTTP, so the https:// request fails; the row's state names the URL.
    const bare = `127.0.0.1:${down.port}/research/s/bare/start`;
    const row = await enrich("only_seed", bare);
    expect(down.hits("/research/s/bare/start")).toBe(0);
    const state = JSON.stringify(row.enrichment_state);
    expect(state).toContain(`https://${bare}`);
    expect(state).not.toContain(`http://${bare}`);
  });

  it("fails a row whose site refuses connections as a transient error, retried later, not as done", async () => {
    const closed = await closedPort();
    const row = await enrich("only_seed", `http://127.0.0.1:${closed}/research/s/gone/start`);
    expect({
      status: row.enrichment_status,
      stage: row.enrichment_state.stages?.fetch?.status,
    }).toEqual({
      status: "failed",
      stage: "error",
    });
    expect(row.enrichment_state.stages?.fetch?.error).toMatchObject({ permanent: false });
    expect(row.enrichment_state.stages?.fetch?.error?.class).toMatch(/^crawl_/);
    expect(row.enrichment_next_at).not.toBeNull();
  });

  it("keeps the pages it could fetch and records each failed URL with its class", async () => {
    const row = await enrich("failures", site.url("/research/s/fail/fails"));
    expect(row.enrichment_status).not.toBe("failed");
    const crawl = crawlOf(row);
    expect(
      names(
        "fail",
        crawl.pages.map((p) => p.url),
      ),
    ).toEqual(["fails", "about"]);
    const byPath = Object.fromEntries(
      crawl.failures.map((f) => [new URL(f.url).pathname, f.class]),
    );
    expect(byPath).toEqual({
      "/research/s/fail/missing": "http_4xx",
      [`${RESEARCH_BLOCKED_PREFIX}about`]: "robots_disallowed",
      "/research/s/fail/to-metadata": "ssrf_refused",
    });
    for (const failure of crawl.failures) expect(failure.message).not.toBe("");
    // robots.txt was obeyed: the blocked page was never requested.
    expect(site.hits(`${RESEARCH_BLOCKED_PREFIX}about`)).toBe(0);
  });

  it("fails a row whose only page answers 5xx, as a transient crawl_http_5xx error that is retried", async () => {
    const url = down.url("/research/s/flaky/error");
    const row = await enrich("only_seed", url);
    expect(row.enrichment_status).toBe("failed");
    expect(row.enrichment_attempts).toBe(1);
    expect(row.enrichment_next_at).not.toBeNull();
    expect(row.enrichment_state.stages?.fetch).toMatchObject({
      status: "error",
      error: { class: "crawl_http_5xx", permanent: false },
    });
    expect(row.enrichment_state.errors?.map((e) => [e.stage, e.class, e.permanent])).toEqual([
      ["fetch", "crawl_http_5xx", false],
    ]);
    // The extract stage did not run on nothing.
    expect(row.enrichment_state.stages?.read).toBeUndefined();

    // Once the retry delay has passed, the row is claimed and the page fetched again.
    await makeDue(h, "only_seed");
    await h.drain();
    const [again] = await h.query<Row>("select * from only_seed where id = $1", [row.id]);
    expect(again?.enrichment_attempts).toBe(2);
    expect(again?.enrichment_status).toBe("failed");
    expect(down.hits("/research/s/flaky/error")).toBe(2);
  });
});

describe("crawl stage: the page cache", () => {
  it("writes each new page it reads to the page cache once", async () => {
    await h.query(`
      create table if not exists public.cache_writes (url text not null);
      create or replace function public.count_cache_write() returns trigger language plpgsql as $$
        begin insert into public.cache_writes values (new.url); return new; end $$;
      drop trigger if exists count_writes on gleaner.page_cache;
      create trigger count_writes after insert or update on gleaner.page_cache
        for each row execute function public.count_cache_write();`);
    const row = await enrich("depth1", site.url("/research/s/writes/start"));
    const urls = crawlOf(row).pages.map((p) => p.url);
    expect(urls.length).toBeGreaterThan(1);
    const writes = await h.query<{ url: string; n: number }>(
      "select url, count(*)::int as n from public.cache_writes where url = any($1) group by url",
      [urls],
    );
    expect(Object.fromEntries(writes.map((w) => [w.url, w.n]))).toEqual(
      Object.fromEntries(urls.map((u) => [u, 1])),
    );
    await h.query("drop trigger count_writes on gleaner.page_cache");
  });
});

describe("crawl stage: stored data read back", () => {
  it("fails a row whose stored crawl data is malformed with stage_data_invalid, once, naming the stage", async () => {
    const url = site.url("/research/s/stored/about");
    const row = await enrich("only_seed", url);
    expect(crawlOf(row).pages).toHaveLength(1);
    // What an older Gleaner (or a hand edit) might have left: the fetch stage is still reused,
    // but its data is not what the extract stage reads.
    await h.query(
      `update only_seed set
         enrichment_state = jsonb_set(enrichment_state #- '{stages,read}',
           '{stages,fetch,data}', '{"pages": "three of them"}'),
         enrichment_status = 'pending', enrichment_attempts = 0, enrichment_next_at = now(),
         ceo = null
       where id = $1`,
      [row.id],
    );
    await h.drain();
    const [after] = await h.query<Row>("select * from only_seed where id = $1", [row.id]);
    expect(after?.enrichment_status).toBe("exhausted");
    expect(after?.enrichment_state.stages?.read).toMatchObject({
      status: "error",
      error: { class: "stage_data_invalid", permanent: true },
    });
    expect(after?.enrichment_state.stages?.read?.error?.message).toContain('stage "fetch"');
    // Permanent: not claimed again however long one waits.
    expect(after?.enrichment_next_at).toBeNull();
  });
});

describe.skipIf(!browserAvailable)("crawl stage: javascript auto", () => {
  it("renders a page whose text a script inserts in Chromium, and keeps that text", async () => {
    const url = site.url("/browser/js/7");
    const row = await enrich("js", url);
    const crawl = crawlOf(row);
    expect(crawl.pages.map((p) => [p.url, p.path, p.title])).toEqual([[url, "browser", "Item 7"]]);
    expect(crawl.pages[0]?.chars).toBeGreaterThan(jsItemText(7).length - 1);
    const [cached] = await h.query<{ markdown: string }>(
      "select markdown from gleaner.page_cache where url = $1",
      [url],
    );
    expect(cached?.markdown).toContain(jsItemText(7));
  });
});
