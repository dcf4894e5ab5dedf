import { afterAll, beforeAll, expect, it } from "vitest";
import { openGleaner, type Gleaner } from "../src/app/open-gleaner.ts";
import { claimDueRows } from "../src/sql/claim-due-rows.ts";
import { readRowCounts } from "../src/sql/row-counts.ts";
import { startWorker } from "../src/worker/start-worker.ts";
import {
  answerRows,
  keyInSection,
  rowIdsInPrompt,
  startFakeLlm,
  type FakeLlm,
} from "./support/fake-llm-server.ts";
import { quietLogger, startHarness, type Harness } from "./support/gleaner-harness.ts";

/**
 * Two sweepers and two workers, each with its own pool and runtime as if they were separate
 * processes, race over 2,000 rows. Every row must be claimed once, sent to the LLM once and
 * settled once.
 */
const ROWS = 2000;
let llm: FakeLlm;
let h: Harness;
let second: Gleaner;
const seen = new Map<string, number>();

beforeAll(async () => {
  llm = await startFakeLlm();
  const answer = answerRows(() => ({ label: { value: "ok", confidence: 0.9 } }));
  llm.handle((req) => {
    for (const rowId of rowIdsInPrompt(req.prompt)) {
      const id = keyInSection(req.prompt, rowId);
      seen.set(id, (seen.get(id) ?? 0) + 1);
    }
    return answer(req);
  });
  h = await startHarness(
    "race",
    `
llm:
  backends:
    - { name: fake, base_url: ${llm.url}, model: fake, max_concurrency: 64 }
pipelines:
  items:
    table: items
    inputs: [name]
    outputs: { label: { type: text, description: "A label" } }
    batch_size: 10
    sweep_limit: 150
    stages:
      - { name: label, kind: llm, backends: [fake], prompt: "Label {{name}} #{{id}}", outputs: [label] }
`,
  );
  second = await openGleaner(h.app.config, {
    env: { DATABASE_URL: h.testDb.url },
    logger: quietLogger,
  });
});

afterAll(async () => {
  await second?.close();
  await h?.close();
  await llm?.close();
});

it("two sweepers and two workers settle 2,000 rows, each exactly once", async () => {
  const workers = await Promise.all(
    [h.app, second].map((app) =>
      startWorker({ runtime: app.runtime, url: h.testDb.url, logger: quietLogger, concurrency: 8 }),
    ),
  );
  const claims: number[][] = [[], []];
  let stop = false;
  const sweeper = async (app: Gleaner, i: number) => {
    const pipeline = app.runtime.pipelines.get("items")!.pipeline;
    while (!stop) {
      const { claimed } = await claimDueRows(app.database.db, app.config, pipeline, 150);
      if (claimed > 0) claims[i]!.push(claimed);
      else await new Promise((r) => setTimeout(r, 5));
    }
  };
  try {
    // Rows arrive in waves while both sweepers run, so they really contend.
    const sweepers = [sweeper(h.app, 0), sweeper(second, 1)];
    for (let wave = 0; wave < 4; wave++) {
      await h.query(
        `insert into items (name) select 'item' || i from generate_series(1, ${ROWS / 4}) i`,
      );
      await new Promise((r) => setTimeout(r, 50));
    }
    const deadline = Date.now() + 60_000;
    for (;;) {
      const counts = await readRowCounts(h.app.database.db, "gleaner", "items");
      if ((counts.done ?? 0) === ROWS) break;
      if (Date.now() > deadline) throw new Error(`not settled: ${JSON.stringify(counts)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    stop = true;
    await Promise.all(sweepers);
  } finally {
    stop = true;
    await Promise.all(workers.map((w) => w.stop()));
  }

  // Both sweepers won some claims; together they claimed every row exactly once.
  expect(claims[0]!.length).toBeGreaterThan(0);
  expect(claims[1]!.length).toBeGreaterThan(0);
  const claimedTotal = [...claims[0]!, ...claims[1]!].reduce((a, b) => a + b, 0);
  expect(claimedTotal).toBe(ROWS);

  const rows = await h.query<{
    id: string;
    label: string;
    enrichment_attempts: number;
    enrichment_status: string;
  }>("select id::text, label, enrichment_attempts, enrichment_status from items");
  expect(rows).toHaveLength(ROWS);
  for (const row of rows) {
    expect(row).toMatchObject({ label: "ok", enrichment_attempts: 1, enrichment_status: "done" });
    expect(seen.get(row.id)).toBe(1);
  }
  expect(seen.size).toBe(ROWS);
  // Every job ran and was removed: none left queued, none failed.
  const [jobs] = await h.query<{ n: number }>(
    "select count(*)::int as n from graphile_worker.jobs",
  );
  expect(jobs?.n).toBe(0);
  // The trigger-kept counters agree with a real count.
  const counts = await readRowCounts(h.app.database.db, "gleaner", "items");
  expect(counts.done).toBe(ROWS);
  expect(counts.complete).toBe(ROWS);
  expect(counts.pending ?? 0).toBe(0);
});
