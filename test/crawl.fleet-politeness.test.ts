import { readFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { Kysely, PostgresDialect, sql } from "kysely";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { GleanerDatabase } from "../src/db/database-types.ts";
import { createDomainSlotStore } from "../src/sql/crawl-domain-slots.ts";
import { startFleetReader, type FleetReader } from "./support/fleet-reader.ts";
import { waitFor } from "./support/gleaner-process.ts";
import { createTestDatabase, type TestDatabase } from "./support/test-database.ts";

/**
 * Per-site politeness held for the whole fleet (src/crawl/fleet-politeness.ts, statements in
 * src/sql/crawl-domain-slots.ts): three real processes reading from sites on 127.0.0.1 keep the
 * spacing and the concurrency of one, a 429 seen by one pauses the others, a breaker opened by one
 * refuses calls from the others, and the slots of a killed process come free when their lease
 * ends. Times compared are all read from the one machine clock (server arrivals, DB now()).
 */

const SCHEMA = "gleaner";
const DELAY_MS = 200;
const CONCURRENCY = 2;
const LEASE_MS = 2_000;
const PAGE_MS = 300;
const RETRY_AFTER_S = 3;

interface Site {
  server: Server;
  origin: string;
  arrivals: { path: string; at: number }[];
  inFlight: number;
  maxInFlight: number;
}

let testDb: TestDatabase;
let pool: pg.Pool;
let db: Kysely<GleanerDatabase>;
/** Three sites, one per concern, so a breaker opened on one does not refuse the others. */
let main: Site;
let failing: Site;
let hanging: Site;
const readers: FleetReader[] = [];

async function startSite(): Promise<Site> {
  const site: Site = {
    server: createServer(),
    origin: "",
    arrivals: [],
    inFlight: 0,
    maxInFlight: 0,
  };
  site.server.on("request", (req: IncomingMessage, res: ServerResponse) => {
    const path = new URL(req.url ?? "/", "http://x").pathname;
    site.arrivals.push({ path, at: Date.now() });
    if (path === "/limited") {
      res.writeHead(429, { "retry-after": String(RETRY_AFTER_S) }).end();
      return;
    }
    if (path.startsWith("/fail/")) {
      res.writeHead(503).end();
      return;
    }
    if (path.startsWith("/hang/")) return; // Never answers.
    site.inFlight++;
    site.maxInFlight = Math.max(site.maxInFlight, site.inFlight);
    setTimeout(() => {
      site.inFlight--;
      res.writeHead(200, { "content-type": "text/html" });
      res.end(`<!doctype html><html><body><main><p>${path}</p></main></body></html>`);
    }, PAGE_MS);
  });
  await new Promise<void>((resolve) => site.server.listen(0, "127.0.0.1", resolve));
  site.origin = `http://127.0.0.1:${(site.server.address() as AddressInfo).port}`;
  return site;
}

const arrivalOf = (site: Site, path: string) => site.arrivals.find((a) => a.path === path)?.at;

beforeAll(async () => {
  testDb = await createTestDatabase("crawl_fleet_politeness");
  pool = new pg.Pool({ connectionString: testDb.url, max: 2 });
  db = new Kysely<GleanerDatabase>({ dialect: new PostgresDialect({ pool }) });
  const migration = readFileSync(
    new URL("../migrations/000016_crawl_domains.sql", import.meta.url),
    "utf8",
  );
  await sql
    .raw(`create schema ${SCHEMA}; ${migration.replaceAll(":GLEANER_SCHEMA", SCHEMA)}`)
    .execute(db);
  [main, failing, hanging] = await Promise.all([startSite(), startSite(), startSite()]);
  const settings = {
    databaseUrl: testDb.url,
    schema: SCHEMA,
    concurrency: CONCURRENCY,
    delayMs: DELAY_MS,
    leaseMs: LEASE_MS,
    failureThreshold: 3,
    coolDownMs: 120_000,
  };
  readers.push(...(await Promise.all([0, 1, 2].map(() => startFleetReader(settings)))));
}, 120_000);

afterAll(async () => {
  await Promise.all(readers.map((r) => r.close()));
  for (const site of [main, failing, hanging]) {
    if (!site) continue;
    site.server.closeAllConnections();
    await new Promise<void>((resolve) => site.server.close(() => resolve()));
  }
  await db?.destroy();
  await testDb?.drop();
});

describe("fleet-wide politeness across processes", () => {
  it("spaces the starts of three processes as one, and holds their concurrency to the limit", async () => {
    const perReader = 4;
    const results = await Promise.all(
      readers.map((reader, r) =>
        reader.read(
          Array.from({ length: perReader }, (_, i) => `${main.origin}/page/spaced-${r}-${i}`),
          perReader,
        ),
      ),
    );
    expect(results.flatMap((r) => r.pages).every((p) => p.ok)).toBe(true);
    const starts = main.arrivals
      .filter((a) => a.path.startsWith("/page/spaced-"))
      .map((a) => a.at)
      .sort((a, b) => a - b);
    expect(starts).toHaveLength(readers.length * perReader);
    // Twelve starts DELAY_MS apart span eleven delays (one delay of slack for a late timer on
    // the first). Each process spacing only its own four would span three.
    const span = (starts.at(-1) ?? 0) - (starts[0] ?? 0);
    expect(span).toBeGreaterThanOrEqual((starts.length - 2) * DELAY_MS);
    expect(main.maxInFlight).toBeLessThanOrEqual(CONCURRENCY);
  }, 60_000);

  it("pauses every process after one of them is answered 429 with Retry-After", async () => {
    const [a, b] = readers as [FleetReader, FleetReader];
    const limited = await a.read([`${main.origin}/limited`]);
    expect(limited.pages[0]?.errorClass).toBe("rate_limited");
    // b never saw the 429: only the shared row can make it wait.
    const after = await b.read([`${main.origin}/page/after-pause`]);
    expect(after.pages[0]?.ok).toBe(true);
    const gap = (arrivalOf(main, "/page/after-pause") ?? 0) - (arrivalOf(main, "/limited") ?? 0);
    expect(gap).toBeGreaterThanOrEqual(RETRY_AFTER_S * 1000);
  }, 60_000);

  it("shares the circuit breaker: failures seen by one process refuse the others' calls", async () => {
    const [a, b, c] = readers as [FleetReader, FleetReader, FleetReader];
    const failed = await a.read([1, 2, 3].map((i) => `${failing.origin}/fail/${i}`));
    expect(failed.pages.map((p) => p.errorClass)).toEqual(["http_5xx", "http_5xx", "http_5xx"]);
    const refused = await b.read([`${failing.origin}/page/refused`]);
    expect(refused.pages[0]?.errorClass).toBe("circuit_open");
    const again = await c.read([`${failing.origin}/page/refused-too`]);
    expect(again.pages[0]?.errorClass).toBe("circuit_open");
    expect(failing.arrivals.map((x) => x.path)).toEqual(["/fail/1", "/fail/2", "/fail/3"]);
  }, 60_000);

  it("frees the slots of a killed process when their leases end", async () => {
    const killed = readers[0] as FleetReader;
    const survivor = readers[1] as FleetReader;
    // Both slots taken by requests that never end, then the process holding them dies.
    void killed.read([`${hanging.origin}/hang/1`, `${hanging.origin}/hang/2`], 2);
    await waitFor("both hanging requests to arrive", () => hanging.arrivals.length === 2);
    await killed.kill();
    const key = new URL(hanging.origin).host;
    const row = await sql<{ expiries: number[] }>`
      select array(select (value)::float8 from jsonb_each(leases)) as expiries
      from ${sql.table(`${SCHEMA}.crawl_domains`)} where domain = ${key}`.execute(db);
    const expiries = row.rows[0]?.expiries ?? [];
    expect(expiries).toHaveLength(CONCURRENCY);

    const after = await survivor.read([`${hanging.origin}/page/after-death`]);
    expect(after.pages[0]?.ok).toBe(true);
    // Granted only once a dead slot's lease had ended, by the database's clock (this machine's).
    expect(arrivalOf(hanging, "/page/after-death")).toBeGreaterThanOrEqual(
      Math.floor(Math.min(...expiries)),
    );
  }, 60_000);
});

describe("crawl_domains housekeeping", () => {
  it("forgets domains idle past the limit that hold nothing, and keeps every other", async () => {
    const table = sql.table(`${SCHEMA}.crawl_domains`);
    await sql`
      insert into ${table} (domain, updated_at, leases, failures, paused_until, open_until, next_slot_at)
      values
        ('idle.example', now() - interval '8 days', '{}', 0, '-infinity', '-infinity', '-infinity'),
        ('recent.example', now() - interval '1 hour', '{}', 0, '-infinity', '-infinity', '-infinity'),
        ('leased.example', now() - interval '8 days', '{"l1": "1"}', 0, '-infinity', '-infinity', '-infinity'),
        ('failing.example', now() - interval '8 days', '{}', 2, '-infinity', '-infinity', '-infinity'),
        ('paused.example', now() - interval '8 days', '{}', 0, 'infinity', '-infinity', '-infinity')
    `.execute(db);
    const store = createDomainSlotStore(db, SCHEMA);
    expect(await store.prune(7 * 86_400_000, 500)).toBe(1);
    const left = await sql<{ domain: string }>`
      select domain from ${table} where domain like '%.example' order by domain`.execute(db);
    expect(left.rows.map((r) => r.domain)).toEqual([
      "failing.example",
      "leased.example",
      "paused.example",
      "recent.example",
    ]);
    // A domain pruned away is met again as a first visit: its row comes back.
    const granted = await store.take({
      domain: "idle.example",
      leaseId: "again",
      concurrency: 1,
      delayMs: 0,
      crawlDelayMs: null,
      leaseMs: 60_000,
      failureThreshold: 3,
    });
    expect(granted.granted).toBe(true);
  });
});
