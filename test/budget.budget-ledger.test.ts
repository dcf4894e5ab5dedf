import { spawn } from "node:child_process";
import { afterAll, beforeAll, expect, it } from "vitest";
import { countChatTokens } from "../src/llm/count-tokens.ts";
import { randomUUID } from "node:crypto";
import { readStageHistory } from "../src/sql/answer-history.ts";
import { reserveBudget, rollUpLedger, settleBudgets } from "../src/sql/budget-ledger.ts";
import { readCostReport } from "../src/sql/cost-report.ts";
import { expectedAnswerTokens } from "../src/budget/expected-answer-tokens.ts";
import { reply, rowIdsInPrompt, startFakeLlm, type FakeLlm } from "./support/fake-llm-server.ts";
import { startHarness, type Harness } from "./support/gleaner-harness.ts";

/**
 * Four real processes spend against one tight hourly cap at once, each call reserving its
 * estimate in PostgreSQL before it is made (src/sql/budget-ledger.ts). Answers come back up to
 * 60% longer than expected, so actual costs pass their estimates, as they do in production.
 * The cap may be passed by at most one call's estimate.
 */
const CAP_USD = 12;
const PROCESSES = 4;
let llm: FakeLlm;
let h: Harness;
let yaml: string;

beforeAll(async () => {
  llm = await startFakeLlm();
  let n = 0;
  llm.handle((req) => {
    const expected = expectedAnswerTokens(
      { properties: { rows: { items: { properties: { id: {}, label: {} } } } } },
      1,
    );
    // 70% to 160% of the expected answer size.
    const completion = Math.round(expected * (0.7 + ((n++ * 37) % 91) / 100));
    return reply.json(
      {
        rows: rowIdsInPrompt(req.prompt).map((id) => ({
          id,
          label: { value: "x", confidence: 1 },
        })),
      },
      {
        usage: {
          prompt_tokens: countChatTokens(req.system, req.prompt, "gpt-4o-mini"),
          completion_tokens: completion,
        },
      },
    );
  });
  yaml = `
llm:
  backends:
    - name: paid
      base_url: ${llm.url}
      model: gpt-4o-mini
      max_concurrency: 8
      price: { input_per_million: 1000, output_per_million: 4000 }
pipelines:
  spend:
    table: spend
    inputs: [name]
    outputs: { label: { type: text, description: "A label" } }
    budget: { per_hour_usd: ${CAP_USD} }
    stages:
      - { name: label, kind: llm, backends: [paid], prompt: "Label {{name}}", outputs: [label] }
`;
  h = await startHarness("budget_race", yaml);
});

afterAll(async () => {
  await h?.close();
  await llm?.close();
});

function runSpender(): Promise<{ calls: number; maxEstimateUsd: number; refused: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", "test/support/budget-spender.ts"], {
      env: { ...process.env, GLEANER_YAML: yaml, DATABASE_URL: h.testDb.url },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    child.once("exit", (code) => {
      if (code !== 0) reject(new Error(`spender exited ${code}: ${err}`));
      else resolve(JSON.parse(out) as { calls: number; maxEstimateUsd: number; refused: string });
    });
  });
}

it("holds the cap within one call's estimate with 4 processes racing", async () => {
  const results = await Promise.all(Array.from({ length: PROCESSES }, () => runSpender()));
  const [ledger] = await h.query<{ spent: number }>(
    "select coalesce(sum(cost_usd), 0)::float8 as spent from gleaner.cost_ledger where pipeline = 'spend'",
  );
  const [windows] = await h.query<{ counted: number }>(
    "select coalesce(sum(spent_usd), 0)::float8 as counted from gleaner.budget_windows where scope = 'pipeline:spend'",
  );
  const spent = ledger?.spent ?? 0;
  const counted = windows?.counted ?? 0;
  const calls = results.reduce((n, r) => n + r.calls, 0);
  const maxEstimate = Math.max(...results.map((r) => r.maxEstimateUsd));
  const overshoot = spent - CAP_USD;
  console.error(
    `budget race: ${PROCESSES} processes, ${calls} calls, spent $${spent.toFixed(4)} of a $${CAP_USD} cap, overshoot $${overshoot.toFixed(4)} (${((overshoot / maxEstimate) * 100).toFixed(0)}% of the largest estimate $${maxEstimate.toFixed(4)})`,
  );
  // Every process ran until the cap refused it.
  for (const r of results)
    expect(r.refused).toMatch(/budget exhausted: pipeline:spend hour cap \$12/);
  // The window counts exactly what the ledger holds.
  expect(counted).toBeCloseTo(spent, 9);
  expect(spent).toBeLessThanOrEqual(CAP_USD + maxEstimate);
  // The cap was really used, not refused early.
  expect(spent).toBeGreaterThan(CAP_USD - 2 * maxEstimate);
  // Nothing is left reserved once every call settled.
  const left = await h.query("select 1 from gleaner.budget_reservations");
  expect(left).toHaveLength(0);
}, 120_000);

it("rolls ledger lines older than the retention up into one line per day", async () => {
  await h.query(`
    insert into gleaner.cost_ledger (at, pipeline, stage, backend, model, row_key, calls,
                                     input_tokens, output_tokens, cost_usd)
    select '2030-01-01T10:00:00Z'::timestamptz + i * interval '1 minute', 'old', 'label', 'paid',
           'gpt-4o-mini', i::text, 0.5, 100, 10, 0.25
    from generate_series(1, 6) i`);
  const replaced = await rollUpLedger(h.app.database.db, "gleaner", {
    now: Date.parse("2030-03-01T00:00:00Z"),
    retentionMs: 30 * 86_400_000,
  });
  // The race above wrote lines too, all older than that.
  expect(replaced).toBeGreaterThanOrEqual(6);
  const lines = await h.query<{ row_key: string | null; calls: number; cost_usd: number }>(
    "select row_key, calls, cost_usd from gleaner.cost_ledger where pipeline = 'old'",
  );
  expect(lines).toEqual([{ row_key: null, calls: 3, cost_usd: 1.5 }]);
});

it("settles many calls in one statement: each reservation gone, each window counting every cost once", async () => {
  const db = h.app.database.db;
  const start = Date.parse("2031-05-01T10:00:00Z");
  const hour = { scope: "pipeline:grouped", kind: "hour" as const, start, capUsd: 100 };
  const day = { scope: "global", kind: "day" as const, start, capUsd: 100 };
  const reserved = await Promise.all(
    [1, 2, 3].map(() =>
      reserveBudget(db, "gleaner", {
        windows: [day, hour],
        amountUsd: 5,
        now: start,
        ttlMs: 60_000,
      }),
    ),
  );
  const ids = reserved.map((r) => (r.ok ? r.id : "refused"));
  const line = (rowKeys: string[], costUsd: number) => ({
    pipeline: "grouped",
    stage: "label",
    backend: "paid",
    model: "m",
    rowKeys,
    calls: 1,
    inputTokens: 10,
    outputTokens: 2,
    costUsd,
    mode: "live",
  });
  await settleBudgets(db, "gleaner", [
    {
      id: ids[0]!,
      windows: [hour, day],
      actualUsd: 1.25,
      lines: [line(["a", "b"], 1.25)],
      at: start,
    },
    {
      id: ids[1]!,
      windows: [day, hour],
      actualUsd: 2,
      lines: [line(["c", "d"], 2)],
      at: start,
    },
    // A call that failed before it was billed: its reservation goes, nothing is counted.
    { id: ids[2]!, windows: [hour, day], actualUsd: 0, lines: [], at: start },
    // A call made without a reservation (no cap on it): lines only.
    { id: randomUUID(), windows: [], actualUsd: 0.5, lines: [line(["e"], 0.5)], at: start },
    // A call made for no row in particular.
    { id: randomUUID(), windows: [], actualUsd: 0.25, lines: [line([], 0.25)], at: start },
  ]);
  const windows = await h.query<{ scope: string; spent_usd: number }>(
    `select scope, spent_usd from gleaner.budget_windows
     where window_start = '2031-05-01T10:00:00Z' order by scope`,
  );
  expect(windows).toEqual([
    { scope: "global", spent_usd: 3.25 },
    { scope: "pipeline:grouped", spent_usd: 3.25 },
  ]);
  const left = await h.query(
    "select 1 from gleaner.budget_reservations where id = any($1::uuid[])",
    [ids],
  );
  expect(left).toHaveLength(0);
  // One line per call, naming its rows.
  const lines = await h.query<{ row_key: null; row_keys: string[] | null; cost_usd: number }>(
    `select row_key, row_keys, cost_usd from gleaner.cost_ledger where pipeline = 'grouped'
     order by cost_usd`,
  );
  expect(lines).toEqual([
    { row_key: null, row_keys: null, cost_usd: 0.25 },
    { row_key: null, row_keys: ["e"], cost_usd: 0.5 },
    { row_key: null, row_keys: ["a", "b"], cost_usd: 1.25 },
    { row_key: null, row_keys: ["c", "d"], cost_usd: 2 },
  ]);
});

it("reports per row by sharing each call's line among its rows, next to lines written per row before", async () => {
  const db = h.app.database.db;
  const at = Date.parse("2031-06-01T10:00:00Z");
  const call = (rowKeys: string[], costUsd: number, outputTokens: number) => ({
    pipeline: "shared",
    stage: "label",
    backend: "paid",
    model: "m",
    rowKeys,
    calls: 1,
    inputTokens: 100,
    outputTokens,
    costUsd,
    mode: "live",
  });
  await settleBudgets(db, "gleaner", [
    { id: randomUUID(), windows: [], actualUsd: 3, lines: [call(["a", "b", "c"], 3, 30)], at },
    { id: randomUUID(), windows: [], actualUsd: 1, lines: [call(["a"], 1, 20)], at },
  ]);
  // A line per row, as migration 000020 found them: row c's half of a call of two rows.
  await h.query(`
    insert into gleaner.cost_ledger (at, pipeline, stage, backend, model, row_key, calls,
                                     input_tokens, output_tokens, cost_usd)
    values ('2031-06-01T09:00:00Z', 'shared', 'label', 'paid', 'm', 'c', 0.5, 50, 4, 0.5)`);
  // And a rolled-up day, which belongs to no row.
  await h.query(`
    insert into gleaner.cost_ledger (at, pipeline, stage, backend, model, calls, input_tokens,
                                     output_tokens, cost_usd, rolled_up)
    values ('2031-05-01T00:00:00Z', 'shared', 'label', 'paid', 'm', 7, 700, 70, 7, true)`);

  const byRow = await readCostReport(db, "gleaner", "shared", "row");
  expect(byRow).toEqual([
    { group: "(rolled up)", calls: 7, input_tokens: 700, output_tokens: 70, cost_usd: 7 },
    { group: "a", calls: 1.333, input_tokens: 133, output_tokens: 30, cost_usd: 2 },
    { group: "c", calls: 0.833, input_tokens: 83, output_tokens: 14, cost_usd: 1.5 },
    { group: "b", calls: 0.333, input_tokens: 33, output_tokens: 10, cost_usd: 1 },
  ]);
  // Every other grouping counts each line whole: the same totals.
  const byStage = await readCostReport(db, "gleaner", "shared", "stage");
  expect(byStage).toEqual([
    { group: "label", calls: 9.5, input_tokens: 950, output_tokens: 124, cost_usd: 11.5 },
  ]);
  // The answer sizes `gleaner estimate` expects: per row, over the rows' lines only.
  const history = await readStageHistory(db, "gleaner", "shared");
  expect(history).toEqual([
    {
      stage: "label",
      model: "m",
      rows: 5,
      outputTokensPerRow: (30 + 20 + 4) / 5,
      inputTokensPerRow: (100 + 100 + 50) / 5,
      costPerRow: (3 + 1 + 0.5) / 5,
    },
  ]);
});
