import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { startHarness, type Harness } from "../support/gleaner-harness.ts";
import { spawnGleaner, waitFor, type GleanerProcess } from "../support/gleaner-process.ts";

/**
 * The connection that LISTENs for new rows is killed (as a restart, a failover or an idle
 * timeout in a proxy would). The scheduler must listen again, sweep once for the rows it missed
 * meanwhile, and keep starting new rows at once — with the cron schedule a year away, only the
 * notification can start them — without leaking a connection per loss.
 */
let h: Harness;
let sweeper: GleanerProcess | undefined;

const config = `
pipelines:
  leads:
    table: leads
    inputs: [name]
    outputs: { score: { type: integer, description: "A score" } }
    schedule: "0 0 1 1 *"
    stages:
      - { name: score, kind: custom, module: ${JSON.stringify(join(process.cwd(), "test/fixtures/word-count-stage.ts"))}, outputs: [score] }
`;

beforeAll(async () => {
  h = await startHarness("listen_recovery", config);
});

afterAll(async () => {
  await sweeper?.kill();
  await h?.close();
});

async function listeners(): Promise<number[]> {
  const rows = await h.query<{ pid: number }>(
    `select pid from pg_stat_activity
     where datname = current_database() and query ilike 'listen gleaner_pending%'`,
  );
  return rows.map((r) => r.pid);
}

/** Connections the sweeper holds (every backend of the database but this test's own). */
async function sweeperConnections(): Promise<number> {
  const rows = await h.query<{ n: number }>(
    `select count(*)::int as n from pg_stat_activity
     where datname = current_database() and backend_type = 'client backend'
       and pid <> all(select pid from pg_stat_activity where application_name = 'gleaner-test')`,
  );
  return rows[0]?.n ?? 0;
}

async function queued(name: string): Promise<boolean> {
  const rows = await h.query<{ status: string }>(
    "select enrichment_status as status from leads where name = $1",
    [name],
  );
  return rows[0]?.status === "queued";
}

it("listens again after the LISTEN connection is killed, sweeps what it missed, leaks nothing", async () => {
  await h.query("set application_name = 'gleaner-test'");
  const dir = mkdtempSync(join(tmpdir(), "gleaner-listen-"));
  writeFileSync(join(dir, "gleaner.yaml"), config);
  sweeper = spawnGleaner(["sweep", "--config", join(dir, "gleaner.yaml")], {
    env: { DATABASE_URL: h.testDb.url },
  });
  const [first] = await waitFor("the sweeper to listen", async () => {
    const pids = await listeners();
    return pids.length === 1 ? pids : undefined;
  });

  await h.query("insert into leads (name) values ('before')");
  await waitFor("a new row to be queued by the notification", () => queued("before"), 10_000);
  // The pool settles: the sweeper's connections before any loss.
  await new Promise((r) => setTimeout(r, 500));
  const baseline = await sweeperConnections();

  const timings: string[] = [];
  let previous = first;
  for (let loss = 1; loss <= 3; loss++) {
    const killedAt = Date.now();
    await h.query("select pg_terminate_backend($1)", [previous]);
    // Inserted while nobody listens: its notification is lost, so only the sweep made on
    // reconnecting can queue it.
    await h.query("insert into leads (name) values ($1)", [`missed-${loss}`]);
    const [again] = await waitFor(
      `the sweeper to listen again (loss ${loss})`,
      async () => {
        const pids = await listeners();
        return pids.length === 1 && pids[0] !== previous ? pids : undefined;
      },
      20_000,
    );
    const listeningMs = Date.now() - killedAt;
    await waitFor(`the missed row ${loss} to be queued`, () => queued(`missed-${loss}`), 10_000);
    const insertedAt = Date.now();
    await h.query("insert into leads (name) values ($1)", [`after-${loss}`]);
    await waitFor(`a row inserted after loss ${loss} to be queued`, () => queued(`after-${loss}`));
    timings.push(
      `loss ${loss}: listening again after ${listeningMs} ms, new row queued in ${Date.now() - insertedAt} ms`,
    );
    previous = again;
  }
  expect(sweeper.alive(), sweeper.output()).toBe(true);
  // Exactly one listener, and no connection leaked per loss (a lost one is destroyed, not kept).
  expect(await listeners()).toHaveLength(1);
  await new Promise((r) => setTimeout(r, 500));
  expect(await sweeperConnections()).toBeLessThanOrEqual(baseline);
  console.log(`LISTEN recovery: ${timings.join("; ")}`);

  sweeper.signal("SIGTERM");
  expect(await sweeper.exited(), sweeper.output()).toBe(0);
}, 120_000);
