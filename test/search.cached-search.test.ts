import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { parseConfig } from "../src/config/load-config.ts";
import { connectDatabase, type Database } from "../src/db/connect-database.ts";
import { migrate } from "../src/db/migrate.ts";
import { createCachedSearch, type CachedSearchProvider } from "../src/search/cached-search.ts";
import { createSearchCache, type SearchCache } from "../src/search/search-cache.ts";
import { createSearchProvider } from "../src/search/create-search-provider.ts";
import { SearchError, type SearchProvider } from "../src/search/search-provider.ts";
import { startFakeSearchServer, type FakeSearchServer } from "./support/fake-search-server.ts";
import { createTestDatabase, type TestDatabase } from "./support/test-database.ts";
import { MINIMAL_CONFIG_YAML } from "./support/minimal-config.ts";

/**
 * The cache in front of a provider (Serper, against the fake on loopback), on a real
 * PostgreSQL: answers are kept in gleaner.search_cache across instances, expire with the TTL,
 * and identical concurrent searches share one call.
 */

const HOUR = 3_600_000;

const CONFIG_YAML = MINIMAL_CONFIG_YAML;

let testDb: TestDatabase;
let database: Database;
let fake: FakeSearchServer;
let serper: SearchProvider;
let cache: SearchCache;
const cacheWriteErrors: Error[] = [];

beforeAll(async () => {
  testDb = await createTestDatabase("search_cache");
  const config = parseConfig(CONFIG_YAML, { env: { DATABASE_URL: testDb.url } });
  database = await connectDatabase(config, { env: { DATABASE_URL: testDb.url } });
  await migrate(database, config);
  fake = await startFakeSearchServer();
  serper = createSearchProvider({
    provider: "serper",
    base_url: fake.baseUrl("serper"),
    api_key: "fake-serper-key-1234",
    timeout_ms: 5_000,
    limit: 10,
  });
  cache = createSearchCache(database.db, "gleaner");
});

afterAll(async () => {
  await fake?.close();
  await database?.close();
  await testDb?.drop();
});

beforeEach(async () => {
  fake.requests.length = 0;
  fake.behave({ kind: "ok" });
  cacheWriteErrors.length = 0;
  await database.pool.query("truncate gleaner.search_cache");
});

/** A fresh wrapper: what another worker process, or a later run, would have. */
function cached(
  provider: SearchProvider = serper,
  searchCache: SearchCache = cache,
): CachedSearchProvider {
  return createCachedSearch(provider, searchCache, {
    ttlMs: HOUR,
    onCacheWriteError: (error) => cacheWriteErrors.push(error),
  });
}

async function cacheRows() {
  const { rows } = await database.pool.query<{
    provider: string;
    query: string;
    results: unknown;
    requested_limit: number;
    age_s: number;
  }>(
    `select provider, query, results, requested_limit,
            extract(epoch from now() - fetched_at)::float8 as age_s
     from gleaner.search_cache order by provider, query`,
  );
  return rows;
}

describe("cached search", () => {
  it("serves a second identical query from the cache table without a call", async () => {
    const first = cached();
    const results = await first.search("Acme Rocketry", { limit: 3 });
    expect(results).toHaveLength(3);
    expect(fake.requests).toHaveLength(1);
    expect(await cacheRows()).toEqual([
      {
        provider: "serper",
        query: "acme rocketry",
        results,
        requested_limit: 3,
        age_s: expect.any(Number) as number,
      },
    ]);

    // Another instance (another process, a reprocessing run): only the table is shared.
    // Case and spacing differences map to the same entry.
    const second = cached();
    expect(await second.search("  ACME   rocketry ", { limit: 3 })).toEqual(results);
    expect(fake.requests).toHaveLength(1);
    expect(first.stats()).toMatchObject({ calls: 1, cacheHits: 0 });
    expect(second.stats()).toMatchObject({ calls: 0, cacheHits: 1 });
    expect(second.name).toBe("serper");
  });

  it("calls again once the cached answer is older than the TTL, and refreshes it", async () => {
    const search = cached();
    await search.search("Borealis Bakery", { limit: 3 });
    await database.pool.query(
      "update gleaner.search_cache set fetched_at = now() - interval '2 hours'",
    );
    await search.search("Borealis Bakery", { limit: 3 });
    expect(fake.requests).toHaveLength(2);
    expect(search.stats()).toMatchObject({ calls: 2, cacheHits: 0 });
    const [row] = await cacheRows();
    expect(row?.age_s).toBeLessThan(60);
  });

  it("makes one call for concurrent identical queries in one process", async () => {
    fake.behave({ kind: "ok", delayMs: 200 });
    const search = cached();
    const answers = await Promise.all(
      ["Cobalt River", "cobalt river", "Cobalt  River", "COBALT RIVER", "Cobalt River"].map((q) =>
        search.search(q, { limit: 3 }),
      ),
    );
    expect(fake.requests).toHaveLength(1);
    for (const answer of answers) expect(answer).toEqual(answers[0]);
    expect(search.stats()).toMatchObject({ calls: 1, cacheHits: 0, sharedInFlight: 4 });
  });

  it("serves a smaller limit from a larger cached answer, but calls for a larger one", async () => {
    const search = cached();
    const five = await search.search("Dunmore Shipping", { limit: 5 });
    expect(await search.search("Dunmore Shipping", { limit: 2 })).toEqual(five.slice(0, 2));
    expect(fake.requests).toHaveLength(1);
    expect(await search.search("Dunmore Shipping", { limit: 8 })).toHaveLength(8);
    expect(fake.requests).toHaveLength(2);
  });

  it("serves any limit when the provider had fewer results than were asked for", async () => {
    fake.behave({
      kind: "body",
      body: {
        organic: [{ title: "only", link: "https://only.example/", snippet: "s", position: 1 }],
      },
    });
    const search = cached();
    await search.search("rare words", { limit: 3 });
    expect(await search.search("rare words", { limit: 10 })).toHaveLength(1);
    expect(fake.requests).toHaveLength(1);
  });

  it("never caches a failure", async () => {
    fake.behave({ kind: "server_error" });
    const search = cached();
    await expect(search.search("Fennwick", { limit: 3 })).rejects.toBeInstanceOf(SearchError);
    expect(await cacheRows()).toEqual([]);
    fake.behave({ kind: "ok" });
    expect(await search.search("Fennwick", { limit: 3 })).toHaveLength(3);
    expect(fake.requests).toHaveLength(2);
    expect(search.stats()).toMatchObject({ calls: 2, failures: 1 });
  });

  it("lets one caller give up on a shared call without cancelling it for the others", async () => {
    fake.behave({ kind: "ok", delayMs: 200 });
    const search = cached();
    const controller = new AbortController();
    const reason = new Error("this row was released");
    const leaving = search.search("Garnet Bank", { limit: 3, signal: controller.signal });
    const staying = search.search("Garnet Bank", { limit: 3 });
    controller.abort(reason);
    await expect(leaving).rejects.toBe(reason);
    expect(await staying).toHaveLength(3);
    expect(fake.requests).toHaveLength(1);
    // The shared call completed and was cached for later.
    expect(await cacheRows()).toHaveLength(1);
  });

  it("returns paid-for results when the cache write fails, and reports the failure", async () => {
    const failingWrites: SearchCache = {
      get: (...args) => cache.get(...args),
      put: () => Promise.reject(new Error("disk full")),
    };
    const search = cached(serper, failingWrites);
    expect(await search.search("Ellsworth Labs", { limit: 3 })).toHaveLength(3);
    expect(cacheWriteErrors).toHaveLength(1);
    expect(cacheWriteErrors[0]?.message).toContain("writing the search cache failed");
    expect((cacheWriteErrors[0]?.cause as Error).message).toBe("disk full");
    expect(search.stats()).toMatchObject({ calls: 1, cacheWriteErrors: 1 });
  });

  it("keeps providers apart in the cache", async () => {
    const brave = createSearchProvider({
      provider: "brave",
      base_url: fake.baseUrl("brave"),
      api_key: "fake-brave-key-1234",
      timeout_ms: 5_000,
      limit: 10,
    });
    await cached(serper).search("same query", { limit: 2 });
    await cached(brave).search("same query", { limit: 2 });
    expect(fake.requests.map((r) => r.api)).toEqual(["serper", "brave"]);
    expect((await cacheRows()).map((r) => r.provider)).toEqual(["brave", "serper"]);
  });
});
