import { subscribe, unsubscribe } from "node:diagnostics_channel";
import { readFileSync } from "node:fs";
import { Kysely, PostgresDialect, sql } from "kysely";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SsrfRefusedError } from "../src/crawl/crawl-error.ts";
import { createCrawler, type CrawlerOptions } from "../src/crawl/crawler.ts";
import { getCachedPage, putCachedPage } from "../src/crawl/page-cache.ts";
import type { Db } from "../src/db/connect-database.ts";
import type { GleanerDatabase } from "../src/db/database-types.ts";
import { METADATA_URL, startFixtureSite, type FixtureSite } from "./support/fixture-site.ts";
import { createTestDatabase, type TestDatabase } from "./support/test-database.ts";

/**
 * The whole fetch path on the fixture site and a real PostgreSQL page cache
 * (migrations/000003_page_cache.sql): guard first, cache hits with no request at all,
 * revalidation with 304, robots refusals, redirects to the metadata address never connected.
 */

const SCHEMA = "gleaner";
let testDb: TestDatabase;
let pool: pg.Pool;
let db: Db;
let site: FixtureSite;
const connectAttempts: string[] = [];
const connectedTo: string[] = [];
const onBeforeConnect = (message: unknown) => {
  connectAttempts.push((message as { connectParams: { hostname: string } }).connectParams.hostname);
};
const onConnected = (message: unknown) => {
  connectedTo.push((message as { socket: { remoteAddress?: string } }).socket.remoteAddress ?? "?");
};

beforeAll(async () => {
  testDb = await createTestDatabase("crawl_crawler");
  pool = new pg.Pool({ connectionString: testDb.url, max: 4 });
  db = new Kysely<GleanerDatabase>({ dialect: new PostgresDialect({ pool }) });
  // The page cache table and the content columns the crawl stage added to it.
  const migration = ["000003_page_cache.sql", "000007_page_content.sql"]
    .map((file) => readFileSync(new URL(`../migrations/${file}`, import.meta.url), "utf8"))
    .join("\n");
  await sql
    .raw(`create schema ${SCHEMA}; ${migration.replaceAll(":GLEANER_SCHEMA", SCHEMA)}`)
    .execute(db);
  site = await startFixtureSite();
  subscribe("undici:client:beforeConnect", onBeforeConnect);
  subscribe("undici:client:connected", onConnected);
});
afterAll(async () => {
  unsubscribe("undici:client:beforeConnect", onBeforeConnect);
  unsubscribe("undici:client:connected", onConnected);
  await site?.close();
  await db?.destroy();
  if (pool && !pool.ended) await pool.end();
  await testDb?.drop();
});

async function withCrawler<T>(
  options: CrawlerOptions,
  fn: (crawler: ReturnType<typeof createCrawler>) => Promise<T>,
): Promise<T> {
  const crawler = createCrawler({ perHostDelayMs: 0, timeoutMs: 2_000, ...options });
  try {
    return await fn(crawler);
  } finally {
    await crawler.close();
  }
}

const allowed: CrawlerOptions = { allow: ["127.0.0.1/32"] };
const cached = (): CrawlerOptions => ({
  ...allowed,
  cache: { db, schema: SCHEMA },
  cacheTtlMs: 60_000,
});

describe("crawler", () => {
  it("refuses the loopback fixture site by default, without a request", async () => {
    const before = site.requests.length;
    await withCrawler({}, async (crawler) => {
      const error = await crawler.fetch(site.url("/about.html")).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(SsrfRefusedError);
      expect(error).toMatchObject({ reason: "loopback", address: "127.0.0.1" });
    });
    expect(site.requests.length).toBe(before);
  });

  it("fetches, stores the page, then serves it from the cache with no network at all", async () => {
    await withCrawler(cached(), async (crawler) => {
      const first = await crawler.fetch(site.url("/about.html"));
      expect(first).toMatchObject({ cache: "miss", status: 200, contentType: "text/html" });
      const row = await getCachedPage(db, SCHEMA, site.url("/about.html"), 60_000);
      expect(row).toMatchObject({ fresh: true, page: { body: first.body, bytes: first.bytes } });
    });
    // A new crawler: empty robots cache, fresh connections. Still nothing is asked of the site.
    const requestsBefore = site.requests.length;
    const attemptsBefore = connectAttempts.length;
    await withCrawler(cached(), async (crawler) => {
      const again = await crawler.fetch(site.url("/about.html"));
      expect(again.cache).toBe("hit");
      expect(again.body).toContain("Fixture Works");
    });
    expect(site.requests.length).toBe(requestsBefore);
    expect(connectAttempts.length).toBe(attemptsBefore);
  });

  it("revalidates a stale copy with its ETag: 304 refreshes fetched_at", async () => {
    const url = site.url("/cached.html");
    await withCrawler(cached(), async (crawler) => {
      const first = await crawler.fetch(url);
      expect(first).toMatchObject({ cache: "miss", etag: '"cached-v1"' });
      const hourAgo = new Date(Date.now() - 3_600_000);
      await sql`update gleaner.page_cache set fetched_at = ${hourAgo} where url = ${url}`.execute(
        db,
      );
      expect((await getCachedPage(db, SCHEMA, url, 60_000))?.fresh).toBe(false);

      const hits = site.hits("/cached.html");
      const second = await crawler.fetch(url);
      expect(second).toMatchObject({ cache: "revalidated", body: first.body });
      expect(site.hits("/cached.html")).toBe(hits + 1);
      expect(site.requests.at(-1)?.headers["if-none-match"]).toBe('"cached-v1"');
      const row = await getCachedPage(db, SCHEMA, url, 60_000);
      expect(row?.fresh).toBe(true);
      expect(row?.page.fetchedAt.getTime()).toBeGreaterThan(hourAgo.getTime());
    });
  });

  it("upserts: a second put replaces the row", async () => {
    const page = {
      url: "http://example.test/upsert",
      finalUrl: "http://example.test/upsert",
      status: 200,
      contentType: "text/html",
      charset: "utf-8",
      body: "one\u0000",
      structured: [{ "@type": "Thing" }],
      etag: null,
      lastModified: null,
      fetchedAt: new Date(),
      bytes: 3,
    };
    await putCachedPage(db, SCHEMA, page);
    await putCachedPage(db, SCHEMA, { ...page, body: "two", structured: null });
    const row = await getCachedPage(db, SCHEMA, page.url, 60_000);
    expect(row?.page).toMatchObject({ body: "two", structured: null });
    await putCachedPage(db, SCHEMA, { ...page, body: "three" });
    expect((await getCachedPage(db, SCHEMA, page.url, 60_000))?.page).toMatchObject({
      body: "three",
      structured: [{ "@type": "Thing" }],
    });
  });

  it("refuses a path robots.txt disallows, without requesting it", async () => {
    await withCrawler(allowed, async (crawler) => {
      await expect(crawler.fetch(site.url("/private/secret.html"))).rejects.toMatchObject({
        errorClass: "robots_disallowed",
      });
    });
    expect(site.hits("/private/secret.html")).toBe(0);
  });

  it("refuses a redirect to the metadata address: nothing connected there", async () => {
    await withCrawler(allowed, async (crawler) => {
      const error = await crawler.fetch(site.url("/to-metadata")).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(SsrfRefusedError);
      expect(error).toMatchObject({ address: "169.254.169.254", url: METADATA_URL });
    });
    expect(site.hits("/to-metadata")).toBe(1);
    expect(connectAttempts).not.toContain("169.254.169.254");
    expect(connectedTo).not.toContain("169.254.169.254");
    expect(connectedTo.length).toBeGreaterThan(0);
  });

  it("reaches an allowed name through the injected resolver (no real DNS)", async () => {
    await withCrawler(
      {
        allow: ["fixture.test"],
        resolver: (hostname) =>
          Promise.resolve(hostname === "fixture.test" ? [{ address: "127.0.0.1", family: 4 }] : []),
      },
      async (crawler) => {
        const page = await crawler.fetch(`http://fixture.test:${site.port}/text.txt`);
        expect(page).toMatchObject({ body: "plain words\n", contentType: "text/plain" });
      },
    );
  });

  it("opens the host's circuit after repeated 5xx: the next call fails fast, unsent", async () => {
    await withCrawler(
      { ...allowed, circuit: { failureThreshold: 2, coolDownMs: 60_000 } },
      async (crawler) => {
        for (let i = 0; i < 2; i++) {
          await expect(crawler.fetch(site.url("/error"))).rejects.toMatchObject({
            errorClass: "http_5xx",
          });
        }
        const hits = site.hits("/error");
        await expect(crawler.fetch(site.url("/error"))).rejects.toMatchObject({
          errorClass: "circuit_open",
        });
        expect(site.hits("/error")).toBe(hits);
      },
    );
  });
});
