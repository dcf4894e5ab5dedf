import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { afterAll, beforeAll, expect, it } from "vitest";
import {
  answerRows,
  keyInSection,
  startFakeLlm,
  type FakeLlm,
} from "../support/fake-llm-server.ts";
import { startHarness, type Harness } from "../support/gleaner-harness.ts";
import { spawnGleaner, waitFor, type GleanerProcess } from "../support/gleaner-process.ts";

/**
 * A worker process is SIGKILLed the instant graphile-worker locks a job for it: after the job is
 * taken, before (or just after) its rows are marked running. Its rows must be back in work
 * within the lease — not after queue_timeout, set here to 10 minutes so that waiting for it
 * fails the test — and its job must not stay behind, locked, in graphile-worker's table.
 */
const ROUNDS = 5;
const ROWS_PER_ROUND = 5;
let llm: FakeLlm;
let h: Harness;
let listener: pg.Client;
let configFile: string;
const processes: GleanerProcess[] = [];

const config = (llmUrl: string) => `
llm:
  backends:
    - { name: fake, base_url: ${llmUrl}, model: fake, timeout: 10s }
worker: { poll_interval: 100ms }
pipelines:
  leads:
    table: leads
    inputs: [name]
    outputs: { score: { type: integer, description: "A score" } }
    batch_size: ${ROWS_PER_ROUND}
    job_size: ${ROWS_PER_ROUND}
    lease: 3s
    queue_timeout: 10m
    stages:
      - { name: score, kind: llm, backends: [fake], prompt: "Score {{name}} #{{id}}", outputs: [score] }
`;

beforeAll(async () => {
  llm = await startFakeLlm();
  llm.handle(
    answerRows((id, prompt) => ({
      score: { value: Number(keyInSection(prompt, id)) * 2, confidence: 0.9 },
    })),
  );
  h = await startHarness("kill_pickup", config(llm.url));
  configFile = join(mkdtempSync(join(tmpdir(), "gleaner-pickup-")), "gleaner.yaml");
  writeFileSync(configFile, config(llm.url));
  await h.query(`create table done_log (id bigint, at timestamptz default clock_timestamp())`);
  await h.query(`
    create function log_done() returns trigger language plpgsql as $$
    begin insert into done_log (id) values (new.id); return null; end $$`);
  await h.query(`
    create trigger log_done after update on leads for each row
    when (new.enrichment_status = 'done' and old.enrichment_status is distinct from 'done')
    execute function log_done()`);
  // Test instrumentation on graphile-worker's table: say the moment a job is locked.
  const ws = h.app.config.workerSchema;
  await h.query(`
    create function announce_lock() returns trigger language plpgsql as $$
    begin perform pg_notify('job_locked', new.id::text); return null; end $$`);
  await h.query(`
    create trigger announce_lock after update of locked_at on "${ws}"._private_jobs
    for each row when (new.locked_at is not null and old.locked_at is null)
    execute function announce_lock()`);
  listener = new pg.Client({ connectionString: h.testDb.url });
  await listener.connect();
  await listener.query("listen job_locked");
});

afterAll(async () => {
  for (const p of processes) await p.kill();
  await listener?.end();
  await h?.close();
  await llm?.close();
});

/** Waits until a worker process has registered (it handles signals from then on). */
async function registered(worker: GleanerProcess): Promise<void> {
  await waitFor("the worker to register", async () => {
    const r = await h.query<{ n: number }>(
      "select count(*)::int as n from gleaner.workers where pid = $1",
      [worker.child.pid],
    );
    return (r[0]?.n ?? 0) > 0;
  });
}

async function doneRows(): Promise<number> {
  const r = await h.query<{ n: number }>(
    "select count(*)::int as n from leads where enrichment_status = 'done'",
  );
  return r[0]?.n ?? 0;
}

it("a worker killed as it takes a job: the job's rows are back within the lease, the job gone", async () => {
  const recoveries: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const victim = spawnGleaner(["worker", "--config", configFile, "--concurrency", "1"], {
      env: { DATABASE_URL: h.testDb.url },
    });
    processes.push(victim);
    await registered(victim);
    // Killed the moment its job is locked, a little later each round: before and after the
    // rows are marked running.
    const killed = new Promise<number>((resolve) => {
      listener.once("notification", () => {
        setTimeout(() => {
          victim.child.kill("SIGKILL");
          resolve(Date.now());
        }, round * 3);
      });
    });
    await h.query(
      `insert into leads (name) select 'lead' || i from generate_series(1, ${ROWS_PER_ROUND}) i`,
    );
    expect(await h.sweep()).toBe(ROWS_PER_ROUND);
    const killedAt = await killed;
    await victim.exited();

    // A healthy worker reaps the dead one's job and finishes its rows.
    const healthy = spawnGleaner(["worker", "--config", configFile], {
      env: { DATABASE_URL: h.testDb.url },
    });
    processes.push(healthy);
    await registered(healthy);
    const target = (round + 1) * ROWS_PER_ROUND;
    await waitFor(
      `round ${round}: the killed worker's rows to be done (well before queue_timeout)`,
      async () => {
        await h.sweep();
        return (await doneRows()) === target;
      },
      60_000,
      100,
    );
    recoveries.push(Date.now() - killedAt);
    healthy.signal("SIGTERM");
    expect(await healthy.exited(), healthy.output()).toBe(0);
  }

  const rows = await h.query<{ id: string; score: number; enrichment_attempts: number }>(
    "select id::text, score, enrichment_attempts from leads",
  );
  expect(rows).toHaveLength(ROUNDS * ROWS_PER_ROUND);
  for (const row of rows) {
    expect(row.score).toBe(Number(row.id) * 2);
    // Rows the victim never started get their attempt back; started ones keep it.
    expect([1, 2]).toContain(row.enrichment_attempts);
  }
  const log = await h.query<{ n: number }>(
    "select count(*)::int as n from done_log group by id having count(*) > 1",
  );
  expect(log).toEqual([]);
  // No dead job left behind, locked or failed, once a live worker has been around: the last
  // victim's job is reaped as soon as its heartbeat has been silent long enough.
  const janitor = spawnGleaner(["worker", "--config", configFile], {
    env: { DATABASE_URL: h.testDb.url },
  });
  processes.push(janitor);
  await registered(janitor);
  const jobs = () =>
    h.query(
      `select id, attempts, max_attempts, locked_by, locked_at, last_error
       from "${h.app.config.workerSchema}".jobs`,
    );
  await waitFor("dead jobs to be reaped", async () => (await jobs()).length === 0, 30_000).catch(
    async (error: unknown) => {
      throw new Error(`${String(error)}: ${JSON.stringify(await jobs())}`, { cause: error });
    },
  );
  janitor.signal("SIGTERM");
  expect(await janitor.exited(), janitor.output()).toBe(0);
  console.log(
    `kill at job pickup (lease 3 s): kill → rows done ${recoveries.map((ms) => `${ms} ms`).join(", ")}`,
  );
}, 300_000);
