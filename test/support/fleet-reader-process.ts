// One crawling process of a fleet, for test/crawl.fleet-politeness.test.ts and
// bench/fleet-politeness.ts: a page reader whose per-site limits are held in PostgreSQL
// (src/sql/crawl-domain-slots.ts), reading the URLs it is told on stdin, one JSON command a line:
//   {"read": ["http://…", …], "parallel": 4}   → a line per page, then {"done": n, ...stats}
//   {"loop": "http://127.0.0.1:p/page/", "parallel": 4, "forMs": 10000}   → reads …/<i> until then
// Settings come as JSON in argv[2]: {databaseUrl, schema, concurrency, delayMs, leaseMs?,
// failureThreshold?, coolDownMs?, timeoutMs?}. Every statement the politeness sends is counted.
import { createInterface } from "node:readline";
import { Kysely, PostgresDialect } from "kysely";
import pg from "pg";
import { findCrawlError } from "../../src/crawl/crawl-error.ts";
import type { DomainSlotStore } from "../../src/crawl/domain-slot-store.ts";
import { createPageReader } from "../../src/crawl/page-reader.ts";
import type { GleanerDatabase } from "../../src/db/database-types.ts";
import { createDomainSlotStore } from "../../src/sql/crawl-domain-slots.ts";

interface Settings {
  databaseUrl: string;
  schema: string;
  concurrency: number;
  delayMs: number;
  leaseMs?: number;
  failureThreshold?: number;
  coolDownMs?: number;
  timeoutMs?: number;
}

interface Command {
  read?: string[];
  loop?: string;
  parallel?: number;
  forMs?: number;
}

const settings = JSON.parse(process.argv[2] ?? "{}") as Settings;
const pool = new pg.Pool({ connectionString: settings.databaseUrl, max: 4 });
const db = new Kysely<GleanerDatabase>({ dialect: new PostgresDialect({ pool }) });
const inner = createDomainSlotStore(db, settings.schema);
const counts = { roundTrips: 0 };
const store: DomainSlotStore = {
  take: (r) => {
    counts.roundTrips++;
    return inner.take(r);
  },
  giveBack: (r) => {
    counts.roundTrips++;
    return inner.giveBack(r);
  },
  prune: (idleMs, limit) => {
    counts.roundTrips++;
    return inner.prune(idleMs, limit);
  },
};
const reader = createPageReader({
  allow: ["127.0.0.1/32"],
  perHostConcurrency: settings.concurrency,
  perHostDelayMs: settings.delayMs,
  timeoutMs: settings.timeoutMs ?? 60_000,
  robots: { enabled: false },
  circuit: {
    ...(settings.failureThreshold !== undefined
      ? { failureThreshold: settings.failureThreshold }
      : {}),
    ...(settings.coolDownMs !== undefined ? { coolDownMs: settings.coolDownMs } : {}),
  },
  fleet: {
    store,
    ...(settings.leaseMs !== undefined ? { leaseMs: settings.leaseMs } : {}),
    onStoreError: (error) => process.stderr.write(`${error.message}\n`),
  },
});

const say = (line: object) => process.stdout.write(`${JSON.stringify(line)}\n`);

async function readOne(url: string): Promise<boolean> {
  try {
    await reader.read(url, { javascript: "never" });
    say({ url, ok: true, at: Date.now() });
    return true;
  } catch (error) {
    say({ url, ok: false, errorClass: findCrawlError(error)?.errorClass ?? String(error) });
    return false;
  }
}

async function run(command: Command): Promise<void> {
  const parallel = command.parallel ?? 1;
  let pages = 0;
  const before = counts.roundTrips;
  if (command.read) {
    const queue = [...command.read];
    await Promise.all(
      Array.from({ length: parallel }, async () => {
        for (let url = queue.shift(); url !== undefined; url = queue.shift()) {
          if (await readOne(url)) pages++;
        }
      }),
    );
  } else if (command.loop) {
    const until = Date.now() + (command.forMs ?? 10_000);
    let next = 0;
    const prefix = `${command.loop}${process.pid}-`;
    await Promise.all(
      Array.from({ length: parallel }, async () => {
        while (Date.now() < until) {
          try {
            await reader.read(`${prefix}${next++}`, { javascript: "never" });
            pages++;
          } catch {
            // The bench counts pages at the server; a failed read is only not counted here.
          }
        }
      }),
    );
  }
  say({ done: pages, roundTrips: counts.roundTrips - before });
}

const lines = createInterface({ input: process.stdin });
let work = Promise.resolve();
lines.on("line", (line) => {
  work = work.then(() => run(JSON.parse(line) as Command));
});
lines.on("close", () => {
  void work.then(async () => {
    await reader.close();
    await db.destroy();
  });
});
say({ ready: true });
