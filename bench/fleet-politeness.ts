/**
 * Fleet-wide politeness (src/crawl/fleet-politeness.ts, src/sql/crawl-domain-slots.ts) under
 * load: four real crawling processes (test/support/fleet-reader-process.ts), each reading as many
 * pages as it can with `parallel` reads in flight, against one slow site on 127.0.0.1. The site
 * must see the configured rate (1000 / per_host_delay pages/s) for the whole fleet, within 10%,
 * not four times it; and it prints the database round trips the politeness spent per page.
 *
 * The default concurrency (6) leaves the spacing to set the rate: 250 ms pages started 100 ms apart
 * keep 2.5 in flight, and a slot is also held from its grant to its start and through the give-back.
 * With concurrency 4 the slots bind now and then and the rate comes out 5–18% low on a loaded
 * machine: that is the concurrency limit doing its work, not the spacing failing.
 *
 *   node --import tsx bench/fleet-politeness.ts [processes=4] [delayMs=100] [seconds=12]
 *     [concurrency=6] [pageMs=250] [parallel=4]
 */
import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import pg from "pg";
import { startFleetReader } from "../test/support/fleet-reader.ts";
import { createBenchDatabase, fmt } from "./support/bench-database.ts";

const processes = Number(process.argv[2] ?? 4);
const delayMs = Number(process.argv[3] ?? 100);
const seconds = Number(process.argv[4] ?? 12);
const concurrency = Number(process.argv[5] ?? 6);
const pageMs = Number(process.argv[6] ?? 250);
const parallel = Number(process.argv[7] ?? 4);
const SCHEMA = "gleaner";

const database = await createBenchDatabase("fleet_politeness");
const client = new pg.Client({ connectionString: database.url });
await client.connect();
const migration = readFileSync(
  new URL("../migrations/000016_crawl_domains.sql", import.meta.url),
  "utf8",
);
await client.query(`create schema ${SCHEMA}; ${migration.replaceAll(":GLEANER_SCHEMA", SCHEMA)}`);
await client.end();

const arrivals: number[] = [];
let inFlight = 0;
let maxInFlight = 0;
const server = createServer((req, res) => {
  arrivals.push(Date.now());
  inFlight++;
  maxInFlight = Math.max(maxInFlight, inFlight);
  setTimeout(() => {
    inFlight--;
    res.writeHead(200, { "content-type": "text/html" });
    res.end(`<!doctype html><html><body><main><p>${req.url}</p></main></body></html>`);
  }, pageMs);
});
await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

const readers = await Promise.all(
  Array.from({ length: processes }, () =>
    startFleetReader({ databaseUrl: database.url, schema: SCHEMA, concurrency, delayMs }),
  ),
);
const startedAt = Date.now();
const results = await Promise.all(
  readers.map((r) => r.loop(`${origin}/page/`, parallel, seconds * 1000)),
);
await Promise.all(readers.map((r) => r.close()));
server.closeAllConnections();
server.close();
await database.drop();

// The steady state: the first and the last second (processes starting and stopping) left out.
const from = startedAt + 1000;
const to = startedAt + (seconds - 1) * 1000;
const inWindow = arrivals.filter((at) => at >= from && at < to).length;
const measured = inWindow / ((to - from) / 1000);
const configured = 1000 / delayMs;
const pages = results.reduce((n, r) => n + r.done, 0);
const roundTrips = results.reduce((n, r) => n + r.roundTrips, 0);
const deviation = (measured - configured) / configured;

console.log(
  `${processes} processes × ${parallel} reads in flight, one site answering in ${pageMs} ms, per_host_delay ${delayMs} ms, per_host_concurrency ${concurrency}`,
);
console.log(`configured rate        ${fmt(configured, 2)} pages/s (fleet-wide)`);
console.log(
  `measured at the site   ${fmt(measured, 2)} pages/s over ${seconds - 2} s (${deviation >= 0 ? "+" : ""}${fmt(deviation * 100, 1)}%)`,
);
console.log(`most in flight at once ${maxInFlight} (limit ${concurrency})`);
console.log(
  `round trips per page   ${fmt(roundTrips / Math.max(1, pages), 2)} (${roundTrips} statements for ${pages} pages)`,
);
console.log(Math.abs(deviation) <= 0.1 ? "within 10% of the configured rate" : "OUTSIDE 10%");
