import { afterAll, beforeAll, expect, it } from "vitest";
import { openGleaner, type Gleaner } from "../src/app/open-gleaner.ts";
import { createMetrics } from "../src/metrics/create-metrics.ts";
import { drain } from "../src/worker/drain.ts";
import {
  keyInSection,
  reply,
  rowIdsInPrompt,
  startFakeLlm,
  type FakeLlm,
} from "./support/fake-llm-server.ts";
import { quietLogger, startHarness, type Harness } from "./support/gleaner-harness.ts";
import { ManualClock } from "./support/manual-clock.ts";

/**
 * A pipeline whose hourly cap pays for one call of two rows: the other rows wait, `failed` with
 * class budget_exhausted, due when the window resets, their attempt not counted and their values
 * untouched; once the (injected) clock is in the next window they are enriched.
 */
let llm: FakeLlm;
let h: Harness;
let app: Gleaner;
// 10:00:00 UTC on some day: the hourly window ends at 11:00.
const clock = new ManualClock(Date.UTC(2031, 4, 6, 10, 0, 0));

beforeAll(async () => {
  llm = await startFakeLlm();
  llm.handle((req) =>
    reply.json(
      {
        rows: rowIdsInPrompt(req.prompt).map((id) => ({
          id,
          label: { value: `label ${keyInSection(req.prompt, id)}`, confidence: 0.9 },
        })),
      },
      { usage: { prompt_tokens: 100, completion_tokens: 50 } },
    ),
  );
  h = await startHarness(
    "budget_wait",
    `
llm:
  cache_ttl: 0s
  backends:
    - name: paid
      base_url: ${llm.url}
      model: gpt-4o-mini
      max_concurrency: 1
      price: { input_per_million: 1000, output_per_million: 1000 }
pipelines:
  items:
    table: items
    inputs: [name]
    outputs: { label: { type: text, description: "A label" } }
    batch_size: 2
    job_size: 2
    budget: { per_hour_usd: 0.4 }
    stages:
      - { name: label, kind: llm, backends: [paid], prompt: "Label {{name}} #{{id}}", outputs: [label] }
`,
  );
  app = await openGleaner(h.app.config, {
    env: { DATABASE_URL: h.testDb.url },
    logger: quietLogger,
    clock,
  });
});

afterAll(async () => {
  await app?.close();
  await h?.close();
  await llm?.close();
});

const run = async () => {
  await h.sweep();
  const result = await drain({ runtime: app.runtime, url: h.testDb.url, logger: quietLogger });
  expect(result.timedOut).toBe(false);
};

it("rows wait for the next window, uncounted, then are enriched", async () => {
  const metrics = createMetrics(app.runtime);
  await h.query("insert into items (name) values ('a'), ('b'), ('c'), ('d')");
  await run();
  const waiting = await h.query<{
    label: string | null;
    enrichment_status: string;
    enrichment_attempts: number;
    wait_s: number;
    outcome: string;
  }>(`
    select label, enrichment_status, enrichment_attempts,
           extract(epoch from enrichment_next_at - now())::float8 as wait_s,
           enrichment_state->'last_run'->>'outcome' as outcome
    from items where enrichment_status <> 'done' order by id`);
  // One call of two rows fit the $0.4 cap (it reserves about $0.3, costs $0.15); the next reservation did not.
  expect(waiting).toHaveLength(2);
  for (const row of waiting) {
    expect(row).toMatchObject({
      label: null,
      enrichment_status: "failed",
      enrichment_attempts: 0,
      outcome: "budget_exhausted",
    });
    // Due at 11:00 by the budget's clock: an hour from 10:00.
    expect(row.wait_s).toBeGreaterThan(3590);
    expect(row.wait_s).toBeLessThanOrEqual(3600);
  }
  expect(llm.requests.filter((r) => r.method === "POST")).toHaveLength(1);
  // /metrics shows the waiting rows and the window against its cap.
  const text = await metrics.registry.metrics();
  metrics.close();
  expect(text).toContain('gleaner_budget_waiting_rows{pipeline="items"} 2');
  expect(text).toContain('gleaner_budget_limit_usd{pipeline="items",window="hour"} 0.4');
  expect(text).toContain('gleaner_budget_refusals_total{pipeline="items"} 1');

  // The window resets: the rows are due (as the database's clock would have it an hour later).
  clock.advance(3_600_000);
  await h.query("update items set enrichment_next_at = now() where enrichment_status = 'failed'");
  await run();
  const rows = await h.query<{
    label: string;
    enrichment_status: string;
    enrichment_attempts: number;
  }>("select label, enrichment_status, enrichment_attempts from items order by id");
  expect(rows.map((r) => r.enrichment_status)).toEqual(["done", "done", "done", "done"]);
  // The wait did not use up an attempt.
  expect(rows.map((r) => r.enrichment_attempts)).toEqual([1, 1, 1, 1]);
  const windows = await h.query<{ kind: string; spent_usd: number }>(
    "select kind, spent_usd from gleaner.budget_windows order by window_start",
  );
  expect(windows.map((w) => w.spent_usd)).toEqual([0.15, 0.15]);
});
