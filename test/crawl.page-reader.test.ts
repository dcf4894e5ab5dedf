import { readFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { Kysely, PostgresDialect, sql } from "kysely";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createBrowserPool } from "../src/crawl/browser-pool.ts";
import { createPageReader, type PageReaderOptions } from "../src/crawl/page-reader.ts";
import type { Db } from "../src/db/connect-database.ts";
import type { GleanerDatabase } from "../src/db/database-types.ts";
import { CHROMIUM_PATH, chromiumAvailable } from "./support/chromium.ts";
import { createTestDatabase, type TestDatabase } from "./support/test-database.ts";

/**
 * The page reader (src/crawl/page-reader.ts) on a real PostgreSQL page cache and a small site on
 * 127.0.0.1 that answers slowly on purpose: one cache write per new page whichever way it was
 * read, the per-host limit held over fetches and renders of several callers at once, and an
 * abort (a row's row_timeout) reaching a fetch in flight, a read queued for its host and a render.
 */

const SCHEMA = "gleaner";
const browserAvailable = chromiumAvailable();
let testDb: TestDatabase;
let pool: pg.Pool;
let db: Db;
let server: Server;
let origin: string;
/** Main documents in flight now, and the most ever at once (favicon and the like left out). */
let inFlight = 0;
let maxInFlight = 0;
/** Paths whose request was closed by the client before an answer. */
const abandoned: string[] = [];
const seen: string[] = [];

const article = (title: string) =>
  `<!doctype html><html><head><title>${title}</title></head><body><main><h1>${title}</h1>` +
  `<p>${"Plain server-side text about the company and its history. ".repeat(12)}</p>` +
  `<a href="/page/next">Next page</a></main></body></html>`;

/** A shell whose text only a script writes: `auto` renders it. */
const shell = (title: string) =>
  `<!doctype html><html><head><title>${title}</title></head><body><div id="root"></div>` +
  `<script>document.getElementById("root").innerHTML = "<main><p>${title} rendered text</p></main>";</script>` +
  `</body></html>`;

function handle(req: IncomingMessage, res: ServerResponse): void {
  const path = new URL(req.url ?? "/", "http://x").pathname;
  seen.push(path);
  if (path === "/robots.txt") {
    res.writeHead(404).end();
    return;
  }
  if (path.startsWith("/hang")) {
    // Never answers: only the client giving up ends this request.
    req.socket.on("close", () => abandoned.push(path));
    return;
  }
  if (path === "/render-hang") {
    // The page's script asks for something that never comes, so the render waits on it.
    res.writeHead(200, { "content-type": "text/html" });
    res.end(
      `<!doctype html><html><body><div id="root"></div><script>fetch("/hang/xhr").then(() => {});</script></body></html>`,
    );
    return;
  }
  const page = /^\/(page|shell)\/(\w+)$/.exec(path);
  if (!page) {
    res.writeHead(404).end();
    return;
  }
  inFlight++;
  maxInFlight = Math.max(maxInFlight, inFlight);
  // Long enough that reads overlap whenever the limit lets them.
  setTimeout(() => {
    inFlight--;
    res.writeHead(200, { "content-type": "text/html; charset=utf-8", etag: `"${path}"` });
    res.end(page[1] === "shell" ? shell(path) : article(path));
  }, 150);
}

beforeAll(async () => {
  testDb = await createTestDatabase("crawl_page_reader");
  pool = new pg.Pool({ connectionString: testDb.url, max: 4 });
  db = new Kysely<GleanerDatabase>({ dialect: new PostgresDialect({ pool }) });
  const migration = ["000003_page_cache.sql", "000007_page_content.sql"]
    .map((file) => readFileSync(new URL(`../migrations/${file}`, import.meta.url), "utf8"))
    .join("\n");
  await sql
    .raw(`create schema ${SCHEMA}; ${migration.replaceAll(":GLEANER_SCHEMA", SCHEMA)}`)
    .execute(db);
  // Every insert or update of a cached page, counted by the database itself.
  await sql
    .raw(
      `create table ${SCHEMA}.cache_writes (url text not null, op text not null);
       create function ${SCHEMA}.count_cache_write() returns trigger language plpgsql as $$
       begin insert into ${SCHEMA}.cache_writes values (new.url, tg_op); return new; end $$;
       create trigger count_writes after insert or update on ${SCHEMA}.page_cache
         for each row execute function ${SCHEMA}.count_cache_write();`,
    )
    .execute(db);
  server = createServer(handle);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server?.closeAllConnections();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  await db?.destroy();
  if (pool && !pool.ended) await pool.end();
  await testDb?.drop();
});

function readerOptions(extra: PageReaderOptions = {}): PageReaderOptions {
  return {
    allow: ["127.0.0.1/32"],
    perHostDelayMs: 0,
    perHostConcurrency: 2,
    // Generous: only an abort may end the slow reads below early.
    timeoutMs: 60_000,
    cache: { db, schema: SCHEMA },
    cacheTtlMs: 60_000,
    browser: (guard) =>
      createBrowserPool({ size: 2, executablePath: CHROMIUM_PATH, guard, timeoutMs: 60_000 }),
    ...extra,
  };
}

async function writesOf(url: string): Promise<number> {
  const result = await sql<{ n: number }>`
    select count(*)::int as n from gleaner.cache_writes where url = ${url}`.execute(db);
  return result.rows[0]?.n ?? -1;
}

describe("page reader: one cache write per page", () => {
  it("writes a new fetched page once, and not at all when serving it fresh", async () => {
    const reader = createPageReader(readerOptions());
    try {
      const url = `${origin}/page/once`;
      const first = await reader.read(url, { javascript: "never" });
      expect(first).toMatchObject({ readBy: "fetch", cache: "miss", status: 200 });
      expect(first.content.markdown).toContain("Plain server-side text");
      expect(first.content.links).toEqual([{ url: `${origin}/page/next`, text: "Next page" }]);
      expect(await writesOf(url)).toBe(1);

      const again = await reader.read(url, { javascript: "auto" });
      expect(again).toMatchObject({ readBy: "cache", cache: "hit" });
      expect(await reader.links(url)).toEqual(first.content.links);
      expect(await writesOf(url)).toBe(1);
    } finally {
      await reader.close();
    }
  });

  it.runIf(browserAvailable)(
    "writes a rendered page once: the fetched HTML is never stored on the way",
    async () => {
      const reader = createPageReader(readerOptions());
      try {
        const url = `${origin}/shell/once`;
        const page = await reader.read(url, { javascript: "auto" });
        expect(page.readBy).toBe("browser");
        expect(page.content.markdown).toContain("/shell/once rendered text");
        expect(page.content.rendered).toBe(true);
        expect(await writesOf(url)).toBe(1);
        // `always` asks for a rendered copy; the cached one is, so nothing is read or written.
        expect((await reader.read(url, { javascript: "always" })).readBy).toBe("cache");
        expect(await writesOf(url)).toBe(1);
      } finally {
        await reader.close();
      }
    },
    120_000,
  );
});

describe("page reader: the per-host limit", () => {
  it.runIf(browserAvailable)(
    "holds per_host_concurrency over fetches and renders of two stages reading at once",
    async () => {
      const reader = createPageReader(readerOptions({ cacheTtlMs: 0 }));
      try {
        maxInFlight = 0;
        // Two stages sharing the process's reader: one plain fetches, one always renders.
        const fetching = Array.from({ length: 8 }, (_, i) =>
          reader.read(`${origin}/page/limit${i}`, { javascript: "never" }),
        );
        const rendering = Array.from({ length: 4 }, (_, i) =>
          reader.read(`${origin}/shell/limit${i}`, { javascript: "always" }),
        );
        const pages = await Promise.all([...fetching, ...rendering]);
        expect(pages.filter((p) => p.readBy === "browser")).toHaveLength(4);
        // Each rendered read asks the host twice (fetch, then the browser's navigation), both
        // inside the read's one slot; never more than two reads hold a slot.
        expect(maxInFlight).toBe(2);
      } finally {
        await reader.close();
      }
    },
    180_000,
  );
});

describe("page reader: an abort stops the read", () => {
  it("stops a fetch in flight: the connection to the slow site is closed", async () => {
    const reader = createPageReader(readerOptions());
    try {
      const controller = new AbortController();
      const reading = reader.read(`${origin}/hang/fetch`, { signal: controller.signal });
      await expect.poll(() => seen.includes("/hang/fetch")).toBe(true);
      controller.abort(new Error("row_timeout"));
      await expect(reading).rejects.toThrow();
      await expect.poll(() => abandoned.includes("/hang/fetch")).toBe(true);
    } finally {
      await reader.close();
    }
  });

  it("stops a read waiting for its host: it never reaches the site", async () => {
    const reader = createPageReader(readerOptions({ perHostConcurrency: 1 }));
    try {
      const first = new AbortController();
      const holding = reader.read(`${origin}/hang/holder`, { signal: first.signal });
      await expect.poll(() => seen.includes("/hang/holder")).toBe(true);
      const second = new AbortController();
      const queued = reader.read(`${origin}/hang/queued`, { signal: second.signal });
      second.abort(new Error("row_timeout"));
      await expect(queued).rejects.toThrow("row_timeout");
      first.abort(new Error("done"));
      await expect(holding).rejects.toThrow();
      expect(seen).not.toContain("/hang/queued");
    } finally {
      await reader.close();
    }
  });

  it.runIf(browserAvailable)(
    "stops a render in flight, long before the crawl timeout",
    async () => {
      const reader = createPageReader(readerOptions());
      try {
        const controller = new AbortController();
        const reading = reader.read(`${origin}/render-hang`, {
          javascript: "always",
          signal: controller.signal,
        });
        // The render is on once the page's script asked for what never comes.
        await expect.poll(() => seen.includes("/hang/xhr"), { timeout: 60_000 }).toBe(true);
        controller.abort(new Error("row_timeout"));
        // Without the signal reaching the browser this would wait out the 60 s timeout.
        await expect(reading).rejects.toThrow();
        expect(await writesOf(`${origin}/render-hang`)).toBe(0);
      } finally {
        await reader.close();
      }
    },
    120_000,
  );
});
