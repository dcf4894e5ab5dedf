import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { ConfigError } from "../src/config/config-error.ts";
import {
  createSearchProvider,
  type SearchProviderConfig,
} from "../src/search/create-search-provider.ts";
import { SearchError, type SearchProvider } from "../src/search/search-provider.ts";
import {
  cannedResults,
  startFakeSearchServer,
  type FakeSearchApi,
  type FakeSearchRequest,
  type FakeSearchServer,
} from "./support/fake-search-server.ts";

/**
 * The four hosted providers against a fake of their APIs on loopback: the request each sends
 * (method, path, auth header, parameters), how its answer is parsed, and how each failure is
 * classified — with the key never showing in an error.
 */

const KEY = "sk-fake-search-key-0123456789";

let fake: FakeSearchServer;

beforeAll(async () => {
  fake = await startFakeSearchServer();
});
afterAll(async () => {
  await fake.close();
});
beforeEach(() => {
  fake.requests.length = 0;
  fake.behave({ kind: "ok" });
});

function provider(
  api: FakeSearchApi,
  overrides: Partial<SearchProviderConfig> = {},
): SearchProvider {
  return createSearchProvider({
    provider: api,
    base_url: fake.baseUrl(api),
    api_key: KEY,
    timeout_ms: 2_000,
    limit: 10,
    ...overrides,
  });
}

/** The only request the fake received. */
function onlyRequest(): FakeSearchRequest {
  expect(fake.requests).toHaveLength(1);
  return fake.requests[0] as FakeSearchRequest;
}

async function searchError(promise: Promise<unknown>): Promise<SearchError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(SearchError);
  return error as SearchError;
}

/** The key in none of the places an error travels to: message, stack, JSON, cause chain. */
function expectNoKey(error: unknown): void {
  let current: unknown = error;
  for (let depth = 0; depth < 5 && current instanceof Error; depth++) {
    expect(current.message).not.toContain(KEY);
    expect(String(current.stack)).not.toContain(KEY);
    expect(JSON.stringify(current)).not.toContain(KEY);
    current = current.cause;
  }
}

const cases: {
  api: FakeSearchApi;
  /** Checks the request against the provider's documented shape. */
  expectRequest: (req: FakeSearchRequest, query: string, limit: number) => void;
}[] = [
  {
    api: "serper",
    expectRequest: (req, query, limit) => {
      expect(req.method).toBe("POST");
      expect(req.path).toBe("/serper/search");
      expect(req.headers["x-api-key"]).toBe(KEY);
      expect(req.headers["content-type"]).toBe("application/json");
      expect(req.body).toEqual({ q: query, num: limit });
    },
  },
  {
    api: "brave",
    expectRequest: (req, query, limit) => {
      expect(req.method).toBe("GET");
      const url = new URL(req.path, fake.url);
      expect(url.pathname).toBe("/brave/res/v1/web/search");
      expect(url.searchParams.get("q")).toBe(query);
      expect(url.searchParams.get("count")).toBe(String(limit));
      expect(req.headers["x-subscription-token"]).toBe(KEY);
      expect(req.headers.accept).toBe("application/json");
    },
  },
  {
    api: "tavily",
    expectRequest: (req, query, limit) => {
      expect(req.method).toBe("POST");
      expect(req.path).toBe("/tavily/search");
      expect(req.headers.authorization).toBe(`Bearer ${KEY}`);
      expect(req.body).toEqual({ query, max_results: limit });
    },
  },
  {
    api: "searxng",
    expectRequest: (req, query) => {
      expect(req.method).toBe("GET");
      const url = new URL(req.path, fake.url);
      expect(url.pathname).toBe("/searxng/search");
      expect(url.searchParams.get("q")).toBe(query);
      expect(url.searchParams.get("format")).toBe("json");
      // SearXNG has no key of its own; a configured one is a bearer for a proxy in front.
      expect(req.headers.authorization).toBe(`Bearer ${KEY}`);
    },
  },
];

describe.each(cases)("$api provider", ({ api, expectRequest }) => {
  it("sends the documented request and maps the answer to ranked plain-text results", async () => {
    const query = "Acme Rocketry Tucson";
    const results = await provider(api).search(query, { limit: 3 });
    expectRequest(onlyRequest(), query, 3);
    const expected = cannedResults(api, query, 3);
    expect(results).toEqual(
      expected.map((r, i) => ({
        title: r.title,
        url: r.url,
        // Brave's <strong> marks and entities are gone.
        snippet: api === "brave" ? `${r.snippet} Q&A` : r.snippet,
        rank: i + 1,
        provider: api,
      })),
    );
  });

  it("classifies 429 as rate_limited, transient, with Retry-After in ms", async () => {
    fake.behave({ kind: "rate_limited", retryAfter: "7" });
    const error = await searchError(provider(api).search("anything", { limit: 3 }));
    expect(error).toMatchObject({ provider: api, errorClass: "rate_limited", permanent: false });
    expect(error.retryAfterMs).toBe(7_000);
    expect(error.status).toBe(429);
    expect(error.query).toBe("anything");
  });

  it("classifies 500 as server_error, transient", async () => {
    fake.behave({ kind: "server_error" });
    const error = await searchError(provider(api).search("anything", { limit: 3 }));
    expect(error).toMatchObject({ errorClass: "server_error", permanent: false, status: 500 });
  });

  it("classifies 401 as auth, permanent, without the key the server echoed back", async () => {
    fake.behave({ kind: "unauthorized" });
    const error = await searchError(provider(api).search("anything", { limit: 3 }));
    expect(error).toMatchObject({ errorClass: "auth", permanent: true, status: 401 });
    expect(error.message).toContain("Invalid API key: ");
    expect(error.message).toContain("***");
    expectNoKey(error);
  });

  it("gives up after timeout_ms on a server that never answers", async () => {
    fake.behave({ kind: "hang" });
    const started = Date.now();
    const error = await searchError(
      provider(api, { timeout_ms: 300 }).search("slow", { limit: 3 }),
    );
    expect(error).toMatchObject({ errorClass: "timeout", permanent: false });
    expect(Date.now() - started).toBeLessThan(2_000);
    expectNoKey(error);
  });

  it("classifies a body that is not JSON as invalid_response", async () => {
    fake.behave({ kind: "broken_json" });
    const error = await searchError(provider(api).search("anything", { limit: 3 }));
    expect(error).toMatchObject({ errorClass: "invalid_response", permanent: false });
  });

  it("does not follow a redirect (it would carry the key to another origin)", async () => {
    fake.behave({ kind: "redirect", location: `${fake.url}/elsewhere` });
    const error = await searchError(provider(api).search("anything", { limit: 3 }));
    expect(error).toMatchObject({ errorClass: "bad_request", permanent: true, status: 302 });
    expect(error.message).toContain("/elsewhere");
    expect(fake.requests.map((r) => r.path)).not.toContain("/elsewhere");
  });

  it("stops when the caller aborts, with the caller's reason rather than a provider error", async () => {
    fake.behave({ kind: "hang" });
    const controller = new AbortController();
    const reason = new Error("worker stopping");
    setTimeout(() => controller.abort(reason), 50);
    await expect(
      provider(api).search("anything", { limit: 3, signal: controller.signal }),
    ).rejects.toBe(reason);
  });

  it("refuses an empty query without a request", async () => {
    const error = await searchError(provider(api).search("   ", { limit: 3 }));
    expect(error).toMatchObject({ errorClass: "bad_request", permanent: true });
    expect(fake.requests).toHaveLength(0);
  });
});

describe("every hosted provider", () => {
  it("classifies a refused connection as connection, transient", async () => {
    // A port that was just free on loopback: nothing listens there now.
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
    const { port } = probe.address() as AddressInfo;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    for (const api of cases.map((c) => c.api)) {
      const p = provider(api, { base_url: `http://127.0.0.1:${port}/${api}` });
      const error = await searchError(p.search("anything", { limit: 3 }));
      expect(error).toMatchObject({ provider: api, errorClass: "connection", permanent: false });
      expectNoKey(error);
    }
  });

  it("asks for no more than the configured limit, whatever the caller wants", async () => {
    await provider("serper", { limit: 4 }).search("capped", { limit: 50 });
    expect(onlyRequest().body).toEqual({ q: "capped", num: 4 });
  });

  it("keeps Brave's count within the API's maximum of 20", async () => {
    const results = await provider("brave", { limit: 100 }).search("many", { limit: 60 });
    expect(new URL(onlyRequest().path, fake.url).searchParams.get("count")).toBe("20");
    expect(results).toHaveLength(20);
  });

  it("returns no more than the limit when SearXNG's page holds more", async () => {
    const results = await provider("searxng").search("page", { limit: 4 });
    expect(results.map((r) => r.rank)).toEqual([1, 2, 3, 4]);
  });

  it("reads a Serper or Brave answer without results as no results", async () => {
    fake.behave({ kind: "body", body: { searchParameters: { q: "nothing" }, knowledgeGraph: {} } });
    expect(await provider("serper").search("nothing", { limit: 3 })).toEqual([]);
    fake.behave({ kind: "body", body: { type: "search", query: { original: "nothing" } } });
    expect(await provider("brave").search("nothing", { limit: 3 })).toEqual([]);
  });

  it("calls a Tavily answer without `results` invalid", async () => {
    fake.behave({ kind: "body", body: { query: "q", answer: "?" } });
    const error = await searchError(provider("tavily").search("q", { limit: 3 }));
    expect(error.errorClass).toBe("invalid_response");
    expect(error.message).toContain("results is not an array");
  });

  it("drops items without an http(s) URL and keeps ranks contiguous", async () => {
    fake.behave({
      kind: "body",
      body: {
        organic: [
          { title: "no link", snippet: "x", position: 1 },
          { title: "first", link: "https://a.example/1", snippet: "a", position: 2 },
          { title: "script", link: "javascript:alert(1)", position: 3 },
          { link: "https://b.example/2", snippet: "untitled", position: 4 },
        ],
      },
    });
    const results = await provider("serper").search("mixed", { limit: 10 });
    expect(results).toEqual([
      { title: "first", url: "https://a.example/1", snippet: "a", rank: 1, provider: "serper" },
      {
        title: "https://b.example/2",
        url: "https://b.example/2",
        snippet: "untitled",
        rank: 2,
        provider: "serper",
      },
    ]);
  });

  it("keeps a path prefix of base_url and ignores a trailing slash", async () => {
    await provider("tavily", { base_url: `${fake.baseUrl("tavily")}/` }).search("x", { limit: 1 });
    expect(onlyRequest().path).toBe("/tavily/search");
  });
});

describe("createSearchProvider", () => {
  const base = { timeout_ms: 1_000, limit: 10 } as const;

  it("refuses a hosted provider without its key, naming the config key", () => {
    for (const kind of ["serper", "brave", "tavily"] as const) {
      expect(() =>
        createSearchProvider({ ...base, provider: kind }, { configPath: "stages[0]" }),
      ).toThrow(new ConfigError("stages[0].api_key", `${kind} needs an API key`));
    }
  });

  it("has public defaults for hosted APIs but needs base_url for self-hosted SearXNG", () => {
    expect(createSearchProvider({ ...base, provider: "brave", api_key: KEY }).name).toBe("brave");
    expect(() => createSearchProvider({ ...base, provider: "searxng" })).toThrow(/base_url/);
    expect(
      createSearchProvider({ ...base, provider: "searxng", base_url: fake.baseUrl("searxng") })
        .name,
    ).toBe("searxng");
  });

  it("refuses malformed URLs, URLs with credentials, and bad limits", () => {
    const make = (c: Partial<SearchProviderConfig>) => () =>
      createSearchProvider({ ...base, provider: "serper", api_key: KEY, ...c });
    expect(make({ base_url: "not a url" })).toThrow(ConfigError);
    expect(make({ base_url: "ftp://127.0.0.1/" })).toThrow(/http\(s\)/);
    expect(make({ base_url: "http://user:pw@127.0.0.1/" })).toThrow(/credentials/);
    expect(make({ limit: 0 })).toThrow(/limit/);
    expect(make({ timeout_ms: -1 })).toThrow(/timeout_ms/);
  });

  it("needs a corpus and the database for the local provider", () => {
    expect(() => createSearchProvider({ ...base, provider: "local" })).toThrow(/corpus/);
    expect(() => createSearchProvider({ ...base, provider: "local", corpus: "demo" })).toThrow(
      /database/,
    );
  });
});
