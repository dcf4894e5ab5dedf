import { spawn } from "node:child_process";
import { afterAll, beforeAll, expect, it } from "vitest";
import { countChatTokens } from "../src/llm/count-tokens.ts";
import { randomUUID } from "node:crypto";
import { reserveBudget, rollUpLedger, settleBudgets } from "../src/sql/budget-ledger.ts";
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
  const line = (rowKey: string, costUsd: number) => ({
    pipeline: "grouped",
    stage: "label",
    backend: "paid",
    model: "m",
    rowKey,
    calls: 0.5,
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
      lines: [line("a", 0.625), line("b", 0.625)],
      at: start,
    },
    {
      id: ids[1]!,
      windows: [day, hour],
      actualUsd: 2,
      lines: [line("c", 1), line("d", 1)],
      at: start,
    },
    // A call that failed before it was billed: its reservation goes, nothing is counted.
    { id: ids[2]!, windows: [hour, day], actualUsd: 0, lines: [], at: start },
    // A call made without a reservation (no cap on it): lines only.
    { id: randomUUID(), windows: [], actualUsd: 0.5, lines: [line("e", 0.5)], at: start },
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
  const lines = await h.query<{ row_key: string; cost_usd: number }>(
    "select row_key, cost_usd from gleaner.cost_ledger where pipeline = 'grouped' order by row_key",
  );
  expect(lines.map((l) => [l.row_key, l.cost_usd])).toEqual([
    ["a", 0.625],
    ["b", 0.625],
    ["c", 1],
    ["d", 1],
    ["e", 0.5],
  ]);
});
