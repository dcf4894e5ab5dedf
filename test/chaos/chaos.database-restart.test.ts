import { mkdtempSync, writeFileSync } from "node:fs";
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
import {
  freePort,
  startPostgresCluster,
  type PostgresCluster,
} from "../support/postgres-cluster.ts";

/**
 * PostgreSQL restarts while `gleaner start` has jobs in flight (a restart or failover: every
 * connection closed with 57P01, then refused for a few seconds). The process must live through
 * it: /healthz keeps answering, /readyz says not ready, and once the database is back every row
 * is finished — none lost, none written twice.
 */
const ROWS = 300;
let cluster: PostgresCluster;
let llm: FakeLlm;
let gleaner: GleanerProcess | undefined;
let db: pg.Pool;
let httpUrl: string;
let configFile: string;
let url: string;

beforeAll(async () => {
  cluster = await startPostgresCluster();
  url = await cluster.createDatabase("chaos");
  llm = await startFakeLlm();
  const good = answerRows((id, prompt) => ({
    score: { value: Number(keyInSection(prompt, id)) * 2, confidence: 0.9 },
  }));
  llm.handle((req) => reply.delay(50, good(req) as ReturnType<typeof reply.json>));
  const port = await freePort();
  httpUrl = `http://127.0.0.1:${port}`;
  configFile = join(mkdtempSync(join(tmpdir(), "gleaner-chaos-")), "gleaner.yaml");
  writeFileSync(
    configFile,
    `
http: { port: ${port} }
worker: { concurrency: 8, poll_interval: 200ms }
llm:
  backends:
    - { name: fake, base_url: ${llm.url}, model: fake, timeout: 5s }
pipelines:
  leads:
    table: leads
    inputs: [name]
    outputs: { score: { type: integer, description: "A score" } }
    batch_size: 5
    job_size: 5
    lease: 4s
    retry: { max_attempts: 10, delays: [200ms], jitter: 0 }
    schedule: "* * * * * *"
    stages:
      - { name: score, kind: llm, backends: [fake], prompt: "Score {{name}} #{{id}}", outputs: [score] }
`,
  );
  const migrate = spawnGleaner(["migrate", "--config", configFile], {
    env: { DATABASE_URL: url },
  });
  expect(await migrate.exited(), migrate.output()).toBe(0);
  db = new pg.Pool({ connectionString: url, max: 2 });
  db.on("error", () => undefined);
  // Every transition to done is logged: a row written twice would show twice.
  await db.query(`create table done_log (id bigint, at timestamptz default clock_timestamp())`);
  await db.query(`
    create function log_done() returns trigger language plpgsql as $$
    begin insert into done_log (id) values (new.id); return null; end $$`);
  await db.query(`
    create trigger log_done after update on leads for each row
    when (new.enrichment_status = 'done' and old.enrichment_status is distinct from 'done')
    execute function log_done()`);
}, 120_000);

afterAll(async () => {
  await gleaner?.kill();
  if (!db.ended) await db.end();
  await llm?.close();
  await cluster?.destroy();
});

/** waitFor, with the end of Gleaner's output in the error: what it said is the diagnosis. */
function until<T>(
  what: string,
  check: () => Promise<T | undefined | false>,
  timeoutMs = 60_000,
): Promise<T> {
  return waitFor(what, check, timeoutMs).catch((error: unknown) => {
    // The whole output is kept for a post-mortem; the end of it goes in the error.
    const file = join(tmpdir(), `gleaner-chaos-restart-${Date.now()}.log`);
    writeFileSync(file, gleaner?.output() ?? "");
    throw new Error(
      `${String(error)}\n--- gleaner output (all of it in ${file}):\n${gleaner?.output().slice(-6000)}`,
      { cause: error },
    );
  });
}

async function status(path: string): Promise<number> {
  try {
    const res = await fetch(`${httpUrl}${path}`, { signal: AbortSignal.timeout(2000) });
    await res.text();
    return res.status;
  } catch {
    // Not listening (yet, or any more): no status at all.
    return 0;
  }
}

async function doneCount(): Promise<number> {
  const r = await db.query<{ n: number }>(
    "select count(*)::int as n from leads where enrichment_status = 'done'",
  );
  return r.rows[0]?.n ?? 0;
}

/**
 * Takes the database away while rows are in flight and brings it back; returns the timings.
 * Checks on the way that the process lives on, /healthz answers and /readyz does not.
 */
async function outage(
  mode: "fast" | "immediate",
  downMs: number,
  rows: number,
): Promise<{ firstDoneMs: number; allDoneMs: number }> {
  const before = await doneCount();
  await db.query(`insert into leads (name) select 'lead' || i from generate_series(1, ${rows}) i`);
  await until("some of the new rows to be done", async () => (await doneCount()) >= before + 20);

  await db.end();
  await cluster.stop(mode);
  await until("/readyz to report not ready", async () => (await status("/readyz")) === 503);
  expect(await status("/healthz")).toBe(200);
  await new Promise((r) => setTimeout(r, downMs));
  expect(gleaner?.alive(), gleaner?.output()).toBe(true);
  await cluster.start();
  const backAt = Date.now();
  db = new pg.Pool({ connectionString: url, max: 2 });
  db.on("error", () => undefined);

  await until("/readyz to report ready again", async () => (await status("/readyz")) === 200);
  const firstDone = await until(
    "a row to be done after the restart",
    async () => {
      const r = await db.query<{ at: Date | null }>(
        "select min(at) as at from done_log where at > $1",
        [new Date(backAt)],
      );
      return r.rows[0]?.at ?? undefined;
    },
    60_000,
  );
  await until("every row to be done", async () => (await doneCount()) === before + rows, 120_000);
  return { firstDoneMs: firstDone.getTime() - backAt, allDoneMs: Date.now() - backAt };
}

it("survives PostgreSQL restarting and crashing under load, and finishes every row once", async () => {
  gleaner = spawnGleaner(["start", "--no-migrate", "--config", configFile], {
    env: { DATABASE_URL: url },
  });
  await until("gleaner to be ready", async () => (await status("/readyz")) === 200, 60_000);

  // A restart or failover: every connection closed at once, the server away for 3 s.
  const restart = await outage("fast", 3000, ROWS);
  // A crash (no checkpoint, recovery at start), away for 15 s.
  const crash = await outage("immediate", 15_000, ROWS);

  expect(gleaner.alive(), gleaner.output()).toBe(true);
  const log = await db.query<{ id: string; n: number }>(
    "select id::text, count(*)::int as n from done_log group by id",
  );
  expect(log.rows).toHaveLength(2 * ROWS);
  expect(log.rows.filter((r) => r.n !== 1)).toEqual([]);
  const rows = await db.query<{ id: string; score: number; enrichment_status: string }>(
    "select id::text, score, enrichment_status from leads",
  );
  expect(rows.rows).toHaveLength(2 * ROWS);
  for (const row of rows.rows) {
    expect(row.enrichment_status).toBe("done");
    expect(row.score).toBe(Number(row.id) * 2);
  }
  console.log(
    `database restart (3 s): back → first row done ${restart.firstDoneMs} ms, → all ${ROWS} rows ${restart.allDoneMs} ms; ` +
      `crash (15 s): back → first row done ${crash.firstDoneMs} ms, → all ${ROWS} rows ${crash.allDoneMs} ms`,
  );

  gleaner.signal("SIGTERM");
  expect(await gleaner.exited(), gleaner.output()).toBe(0);
  if (process.env.GLEANER_CHAOS_VERBOSE) console.log(gleaner.output());
}, 300_000);
