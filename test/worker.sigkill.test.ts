import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import {
  answerRows,
  keyInSection,
  reply,
  rowIdsInPrompt,
  startFakeLlm,
  type FakeLlm,
} from "./support/fake-llm-server.ts";
import { startHarness, type Harness } from "./support/gleaner-harness.ts";

/**
 * A worker process is SIGKILLed while its batches wait on the LLM. Its rows must come back
 * (once its heartbeat is silent, or its lease runs out) and finish elsewhere: none lost, none written twice, and nothing the dead
 * worker was doing may land afterwards.
 */
const ROWS = 50;
let llm: FakeLlm;
let h: Harness;
let child: ChildProcess | undefined;
let configFile: string;

function configText(url: string): string {
  return `
llm:
  backends:
    - { name: fake, base_url: ${url}, model: fake, timeout: 30s }
pipelines:
  leads:
    table: leads
    inputs: [name]
    outputs: { score: { type: integer, description: "A score" } }
    batch_size: 10
    job_size: 10
    lease: 2s
    stages:
      - { name: score, kind: llm, backends: [fake], prompt: "Score {{name}} #{{id}}", outputs: [score] }
`;
}

beforeAll(async () => {
  llm = await startFakeLlm();
  h = await startHarness("sigkill", configText(llm.url));
  configFile = join(mkdtempSync(join(tmpdir(), "gleaner-sigkill-")), "gleaner.yaml");
  writeFileSync(configFile, configText(llm.url));
  // Every transition to done is recorded: a row written twice would show up twice.
  await h.query(`create table done_log (id bigint, at timestamptz default clock_timestamp())`);
  await h.query(`
    create function log_done() returns trigger language plpgsql as $$
    begin insert into done_log (id) values (new.id); return null; end $$`);
  await h.query(`
    create trigger log_done after update on leads for each row
    when (new.enrichment_status = 'done' and old.enrichment_status is distinct from 'done')
    execute function log_done()`);
});

afterAll(async () => {
  if (child && child.exitCode === null) child.kill("SIGKILL");
  await h?.close();
  await llm?.close();
});

it("a SIGKILLed worker's rows finish elsewhere, none lost, none written twice", async () => {
  const held = new Set<string>();
  // Phase 1: the LLM never answers, so the child's batches hang mid-stage.
  llm.handle((req) => {
    for (const id of rowIdsInPrompt(req.prompt)) held.add(keyInSection(req.prompt, id));
    return reply.hang();
  });
  await h.query(`insert into leads (name) select 'lead' || i from generate_series(1, ${ROWS}) i`);
  expect(await h.sweep()).toBe(ROWS);

  child = spawn(
    process.execPath,
    ["bin/gleaner.js", "worker", "--config", configFile, "--concurrency", "2"],
    {
      cwd: process.cwd(),
      env: { ...process.env, DATABASE_URL: h.testDb.url, GLEANER_LOG_LEVEL: "warn" },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let output = "";
  child.stdout?.on("data", (d: Buffer) => (output += d.toString()));
  child.stderr?.on("data", (d: Buffer) => (output += d.toString()));
  const deadline = Date.now() + 30_000;
  while (held.size < 20) {
    if (Date.now() > deadline) throw new Error(`child never reached the LLM: ${output}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const running = await h.query<{ n: number }>(
    "select count(*)::int as n from leads where enrichment_status = 'running'",
  );
  expect(running[0]?.n).toBe(20);
  const killedAt = Date.now();
  child.kill("SIGKILL");
  await new Promise((r) => child?.once("exit", r));

  // Phase 2: a healthy worker (the harness's drain) takes over.
  const answered = new Map<string, number>();
  const good = answerRows((id, prompt) => ({
    score: { value: Number(keyInSection(prompt, id)) * 2, confidence: 0.9 },
  }));
  llm.handle((req) => {
    for (const rowId of rowIdsInPrompt(req.prompt)) {
      const id = keyInSection(req.prompt, rowId);
      answered.set(id, (answered.get(id) ?? 0) + 1);
    }
    return good(req);
  });
  await h.drain(30_000);

  const rows = await h.query<{
    id: string;
    score: number;
    enrichment_status: string;
    enrichment_attempts: number;
  }>("select id::text, score, enrichment_status, enrichment_attempts from leads order by id");
  expect(rows).toHaveLength(ROWS);
  for (const row of rows) {
    expect(row.enrichment_status).toBe("done");
    expect(row.score).toBe(Number(row.id) * 2);
    // Rows the dead worker held count its attempt; the others ran once.
    expect(row.enrichment_attempts).toBe(held.has(row.id) ? 2 : 1);
    expect(answered.get(row.id)).toBe(1);
  }
  const log = await h.query<{ id: string; n: number; first: Date }>(
    "select id::text, count(*)::int as n, min(at) as first from done_log group by id",
  );
  expect(log).toHaveLength(ROWS);
  for (const entry of log) {
    expect(entry.n).toBe(1);
    // The held rows came back only after the worker died: once its heartbeat had been silent
    // for three beats (a third of the 2 s lease each), when the other worker reaped its jobs.
    if (held.has(entry.id)) expect(entry.first.getTime()).toBeGreaterThan(killedAt);
  }
});

it("a SIGTERMed worker hands its rows back at once, the interruption neither counted nor an error", async () => {
  await h.query("truncate leads");
  const held = new Set<string>();
  llm.handle((req) => {
    for (const id of rowIdsInPrompt(req.prompt)) held.add(keyInSection(req.prompt, id));
    return reply.hang();
  });
  await h.query(`insert into leads (name) select 'lead' || i from generate_series(1, 20) i`);
  expect(await h.sweep()).toBe(20);
  const worker = spawn(
    process.execPath,
    ["bin/gleaner.js", "worker", "--config", configFile, "--concurrency", "2"],
    {
      cwd: process.cwd(),
      env: { ...process.env, DATABASE_URL: h.testDb.url, GLEANER_LOG_LEVEL: "warn" },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  child = worker;
  let output = "";
  worker.stderr?.on("data", (d: Buffer) => (output += d.toString()));
  const deadline = Date.now() + 30_000;
  while (held.size < 20) {
    if (Date.now() > deadline) throw new Error(`worker never reached the LLM: ${output}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const signalledAt = Date.now();
  worker.kill("SIGTERM");
  const code = await new Promise((r) => worker.once("exit", r));
  // Printed, not asserted (the machine may be loaded): graphile-worker's own grace is 5 s.
  console.log(`SIGTERM → rows handed back and process exited: ${Date.now() - signalledAt} ms`);
  expect(code).toBe(0);
  const rows = await h.query<{ enrichment_status: string; enrichment_attempts: number; n: number }>(
    `select enrichment_status, enrichment_attempts, count(*)::int as n from leads
     group by 1, 2`,
  );
  expect(rows).toEqual([{ enrichment_status: "pending", enrichment_attempts: 0, n: 20 }]);
  // The interruption is the row's last run, not an error.
  const states = await h.query<{ errors: unknown; outcome: string }>(
    `select enrichment_state->'errors' as errors, enrichment_state->'last_run'->>'outcome' as outcome
     from leads`,
  );
  for (const state of states) {
    expect(state.errors ?? []).toEqual([]);
    expect(state.outcome).toBe("handed_back");
  }
  // Finished later, the rows carry no trace of an error.
  llm.handle(
    answerRows((id, prompt) => ({
      score: { value: Number(keyInSection(prompt, id)) * 2, confidence: 0.9 },
    })),
  );
  await h.drain(30_000);
  const after = await h.query<{ status: string; errors: unknown }>(
    `select enrichment_status as status, enrichment_state->'errors' as errors from leads`,
  );
  for (const row of after) {
    expect(row.status).toBe("done");
    expect(row.errors ?? []).toEqual([]);
  }
});
