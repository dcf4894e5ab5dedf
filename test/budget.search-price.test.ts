import { afterAll, beforeAll, expect, it } from "vitest";
import { openGleaner, type Gleaner } from "../src/app/open-gleaner.ts";
import { estimatePipeline } from "../src/cli/estimate-pipeline.ts";
import { readCostReport } from "../src/sql/cost-report.ts";
import { drain } from "../src/worker/drain.ts";
import {
  keyInSection,
  reply,
  rowIdsInPrompt,
  startFakeLlm,
  type FakeLlm,
} from "./support/fake-llm-server.ts";
import { startFakeSearchServer, type FakeSearchServer } from "./support/fake-search-server.ts";
import { quietLogger, startHarness, type Harness } from "./support/gleaner-harness.ts";
import { ManualClock } from "./support/manual-clock.ts";

/**
 * A paid search provider (`price: 0.01` per request) under an hourly cap of $0.03: exactly three
 * requests are made, through the same ledger as LLM calls; the rows they do not pay for wait as
 * `budget_exhausted`, uncounted, and finish in the next window without asking again what the
 * search cache already holds. `gleaner cost` shows the spend by stage and backend, and `gleaner
 * estimate` prices the searches.
 */
let llm: FakeLlm;
let search: FakeSearchServer;
let h: Harness;
let app: Gleaner;
// 10:00:00 UTC: the hourly window ends at 11:00.
const clock = new ManualClock(Date.UTC(2031, 4, 6, 10, 0, 0));
const PRICE = 0.01;

beforeAll(async () => {
  llm = await startFakeLlm();
  // The LLM is free: whatever is spent is the searches'.
  llm.handle((req) =>
    reply.json({
      rows: rowIdsInPrompt(req.prompt).map((id) => ({
        id,
        label: { value: `label ${keyInSection(req.prompt, id)}`, confidence: 0.9 },
      })),
    }),
  );
  search = await startFakeSearchServer();
  h = await startHarness(
    "budget_search_price",
    `
llm:
  backends: [{ name: free, base_url: ${llm.url}, model: fake }]
search:
  providers:
    web: { provider: serper, base_url: ${search.baseUrl("serper")}, api_key: test-key-123, price: ${PRICE} }
pipelines:
  items:
    table: items
    inputs: [name]
    outputs: { label: { type: text, description: "A label" } }
    budget: { per_hour_usd: 0.03 }
    stages:
      - { name: plan, kind: queries, templates: ["{{name}}", "{{name}} company"], search_context: "" }
      - { name: find, kind: search, provider: web }
      - { name: label, kind: llm, backends: [free], prompt: "Label {{name}} #{{id}}", outputs: [label] }
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
  await search?.close();
});

const run = async () => {
  await h.sweep();
  const result = await drain({ runtime: app.runtime, url: h.testDb.url, logger: quietLogger });
  expect(result.timedOut).toBe(false);
};

const spent = async () =>
  (
    await h.query<{ kind: string; spent_usd: number }>(
      "select kind, spent_usd from gleaner.budget_windows where scope = 'pipeline:items' order by window_start",
    )
  ).map((w) => w.spent_usd);

it("estimates the searches before anything is spent", async () => {
  await h.query("insert into items (name) values ('alpha'), ('beta'), ('gamma')");
  const entry = app.runtime.pipelines.get("items");
  const estimate = await estimatePipeline(app.database.db, app.config, entry!.pipeline, {
    limit: 20,
  });
  const find = estimate.stages.find((s) => s.stage === "find");
  // Three rows, two queries each, a cent each.
  expect(find).toMatchObject({ basis: "searches", backend: "web", calls: 6 });
  expect(find?.cost_usd).toBeCloseTo(6 * PRICE);
  expect(estimate.total_usd).toBeCloseTo(6 * PRICE);
});

it("charges each search request, stops at the cap, and makes the rest wait uncounted", async () => {
  await run();
  // The cap pays for three requests, and no more were made.
  expect(search.requests).toHaveLength(3);
  expect(await spent()).toEqual([0.03]);
  const rows = await h.query<{
    name: string;
    enrichment_status: string;
    enrichment_attempts: number;
    outcome: string | null;
    label: string | null;
  }>(`select name, enrichment_status, enrichment_attempts, label,
        enrichment_state->'last_run'->>'outcome' as outcome from items order by id`);
  // The rows' searches run at once, so which requests the cap paid for varies: a row with both
  // paid is done, and every other waits.
  const done = rows.filter((r) => r.enrichment_status === "done");
  const waiting = rows.filter((r) => r.enrichment_status !== "done");
  expect(done.length).toBeLessThanOrEqual(1);
  expect(waiting.length).toBeGreaterThanOrEqual(2);
  for (const row of waiting)
    expect(row).toMatchObject({
      enrichment_status: "failed",
      enrichment_attempts: 0,
      outcome: "budget_exhausted",
      label: null,
    });

  // The ledger: `gleaner cost --by stage` and `--by backend`.
  const byStage = await readCostReport(app.database.db, "gleaner", "items", "stage");
  // (The free LLM's calls are in the ledger too, at $0.)
  expect(byStage.find((l) => l.group === "find")).toEqual({
    group: "find",
    calls: 3,
    input_tokens: 0,
    output_tokens: 0,
    cost_usd: 0.03,
  });
  const byBackend = await readCostReport(app.database.db, "gleaner", "items", "backend");
  expect(byBackend.find((l) => l.group === "web (search)")?.calls).toBe(3);
  // Each row carries the cost of the requests made for it in its own usage.
  const usage = await h.query<{ cost: number }>(
    "select sum((enrichment_state->'usage'->>'cost_usd')::float8)::float8 as cost from items",
  );
  expect(usage[0]?.cost).toBeCloseTo(3 * PRICE);
});

it("finishes the waiting rows in the next window, paying nothing for cached searches", async () => {
  clock.advance(3_600_000);
  await h.query("update items set enrichment_next_at = now() where enrichment_status = 'failed'");
  await run();
  const statuses = await h.query<{ enrichment_status: string; enrichment_attempts: number }>(
    "select enrichment_status, enrichment_attempts from items order by id",
  );
  expect(statuses.map((r) => r.enrichment_status)).toEqual(["done", "done", "done"]);
  expect(statuses.map((r) => r.enrichment_attempts)).toEqual([1, 1, 1]);
  // Six distinct queries in all, each asked of the provider once: the one answered before the
  // cap was reached came from the cache.
  expect(search.requests).toHaveLength(6);
  expect(await spent()).toEqual([0.03, 0.03]);

  // A row run again asks only the cache: no request, no charge.
  await h.query("update items set enrichment_status = 'pending' where name = 'alpha'");
  await run();
  expect(search.requests).toHaveLength(6);
  const total = await readCostReport(app.database.db, "gleaner", "items", "backend");
  expect(total.find((l) => l.group === "web (search)")?.cost_usd).toBeCloseTo(6 * PRICE);
});
