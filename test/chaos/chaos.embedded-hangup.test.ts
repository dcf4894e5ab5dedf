import { chmodSync, existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { afterAll, beforeAll, expect, it } from "vitest";
import {
  answerRows,
  keyInSection,
  reply,
  startFakeLlm,
  type FakeLlm,
} from "../support/fake-llm-server.ts";
import { spawnGleaner, waitFor, type GleanerProcess } from "../support/gleaner-process.ts";
import { freePort } from "../support/postgres-cluster.ts";

/**
 * `gleaner start` on the embedded default, stopped the ways a terminal user stops it: the
 * terminal closed (SIGHUP to the foreground process group), Ctrl-C (SIGINT to the group), and
 * a SIGKILL. The embedded PostgreSQL must never outlive Gleaner as an orphan (a signal stops it
 * after the rows are handed back; after a SIGKILL the next start adopts it and stops it later),
 * and every next start must work, finishing each row once.
 */
const ROWS = 40;
let llm: FakeLlm;
let dir: string;
let dataDir: string;
let dbUrl: string;
let httpUrl: string;
const started: GleanerProcess[] = [];

beforeAll(async () => {
  llm = await startFakeLlm();
  const good = answerRows((id, prompt) => ({
    score: { value: Number(keyInSection(prompt, id)) * 2, confidence: 0.9 },
  }));
  // Slow enough that rows are in flight when the signal comes.
  llm.handle((req) => reply.delay(300, good(req) as ReturnType<typeof reply.json>));
  dir = mkdtempSync(join(tmpdir(), "gleaner-embedded-"));
  // The embedded server runs as the `postgres` user, which must reach its folder.
  chmodSync(dir, 0o755);
  dataDir = join(dir, "pg");
  const [pgPort, httpPort] = [await freePort(), await freePort()];
  dbUrl = `postgres://postgres:gleaner@127.0.0.1:${pgPort}/gleaner`;
  httpUrl = `http://127.0.0.1:${httpPort}`;
  writeFileSync(
    join(dir, "gleaner.yaml"),
    `
embedded: { data_dir: ${JSON.stringify(dataDir)}, port: ${pgPort} }
http: { port: ${httpPort} }
worker: { concurrency: 4, poll_interval: 200ms }
llm:
  backends:
    - { name: fake, base_url: ${llm.url}, model: fake, timeout: 10s }
pipelines:
  leads:
    table: leads
    inputs: [name]
    outputs: { score: { type: integer, description: "A score" } }
    batch_size: 5
    job_size: 5
    lease: 10s
    stages:
      - { name: score, kind: llm, backends: [fake], prompt: "Score {{name}} #{{id}}", outputs: [score] }
`,
  );
}, 60_000);

afterAll(async () => {
  for (const p of started) await p.kill();
  // Whatever a failed test left running is stopped, never left behind.
  if (existsSync(join(dataDir, "postmaster.pid"))) {
    const start = spawnGleaner(["status", "--config", join(dir, "gleaner.yaml")], {
      env: { DATABASE_URL: "" },
    });
    await start.exited();
  }
  await llm?.close();
});

function start(): GleanerProcess {
  const p = spawnGleaner(["start", "--config", join(dir, "gleaner.yaml")], {
    env: { DATABASE_URL: "" },
    cwd: process.cwd(),
    // Its own process group, as a terminal's foreground job.
    detached: true,
  });
  started.push(p);
  return p;
}

async function ready(p: GleanerProcess): Promise<void> {
  await waitFor(
    "gleaner to be ready on the embedded database",
    async () => {
      if (!p.alive()) throw new Error(`gleaner exited: ${p.output()}`);
      const res = await fetch(`${httpUrl}/readyz`).catch(() => undefined);
      return res?.status === 200;
    },
    120_000,
    200,
  );
}

async function query<T>(text: string): Promise<T[]> {
  const client = new pg.Client({ connectionString: dbUrl });
  await client.connect();
  try {
    return (await client.query(text)).rows as T[];
  } finally {
    await client.end();
  }
}

async function serverStopped(): Promise<boolean> {
  if (existsSync(join(dataDir, "postmaster.pid"))) return false;
  const client = new pg.Client({ connectionString: dbUrl, connectionTimeoutMillis: 1000 });
  client.on("error", () => undefined);
  try {
    await client.connect();
    await client.end();
    return false;
  } catch {
    // Refused: nothing listens any more.
    return true;
  }
}

it("stops the embedded database on hang-up and Ctrl-C, adopts it after a SIGKILL, and every start works", async () => {
  const timings: string[] = [];

  // 1. The terminal closes while rows are in flight.
  const first = start();
  await ready(first);
  await query(`create table done_log (id bigint, at timestamptz default clock_timestamp())`);
  await query(`create function log_done() returns trigger language plpgsql as $$
    begin insert into done_log (id) values (new.id); return null; end $$`);
  await query(`create trigger log_done after update on leads for each row
    when (new.enrichment_status = 'done' and old.enrichment_status is distinct from 'done')
    execute function log_done()`);
  await query(`insert into leads (name) select 'lead' || i from generate_series(1, ${ROWS}) i`);
  await waitFor("rows in flight", async () => {
    const [r] = await query<{ n: number }>(
      "select count(*)::int as n from leads where enrichment_status = 'running'",
    );
    return (r?.n ?? 0) > 0;
  });
  let signalled = Date.now();
  first.signal("SIGHUP", true);
  expect(await first.exited(), first.output()).toBe(0);
  timings.push(`SIGHUP → exit ${Date.now() - signalled} ms`);
  expect(await serverStopped(), "the embedded PostgreSQL outlived gleaner").toBe(true);

  // 2. The next start works. The rows the first one held were handed back before its server
  // stopped (had the server gone first, they would wait for their lease). Then Ctrl-C.
  const second = start();
  await ready(second);
  const handedBack = await query<{ n: number }>(
    "select count(*)::int as n from leads where enrichment_state->'last_run'->>'outcome' = 'handed_back'",
  );
  expect(handedBack[0]?.n).toBeGreaterThan(0);
  await waitFor("some rows done", async () => {
    const [r] = await query<{ n: number }>("select count(*)::int as n from done_log");
    return (r?.n ?? 0) >= 10;
  });
  signalled = Date.now();
  second.signal("SIGINT", true);
  expect(await second.exited(), second.output()).toBe(0);
  timings.push(`SIGINT → exit ${Date.now() - signalled} ms`);
  expect(await serverStopped(), "the embedded PostgreSQL outlived gleaner").toBe(true);

  // 3. A SIGKILL leaves the server running; the next start adopts it, and stops it on exit.
  const third = start();
  await ready(third);
  await third.kill();
  expect(await serverStopped()).toBe(false);
  const fourth = start();
  await ready(fourth);
  expect(fourth.output()).toMatch(/adopted/);
  await waitFor(
    "every row done",
    async () => {
      const [r] = await query<{ n: number }>(
        "select count(*)::int as n from leads where enrichment_status = 'done'",
      );
      return r?.n === ROWS;
    },
    120_000,
  );
  const twice = await query<{ id: string }>(
    "select id::text from done_log group by id having count(*) > 1",
  );
  expect(twice).toEqual([]);
  signalled = Date.now();
  fourth.signal("SIGTERM");
  expect(await fourth.exited(), fourth.output()).toBe(0);
  timings.push(`SIGTERM (adopted server) → exit ${Date.now() - signalled} ms`);
  expect(await serverStopped(), "the adopted PostgreSQL outlived gleaner").toBe(true);
  console.log(`embedded default: ${timings.join("; ")}`);
}, 300_000);
