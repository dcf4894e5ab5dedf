import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openGleaner, type Gleaner } from "../src/app/open-gleaner.ts";
import { parseConfig } from "../src/config/load-config.ts";
import type { RowState } from "../src/pipeline/row-state.ts";
import { drain } from "../src/worker/drain.ts";
import {
  answerRows,
  rowIdsInPrompt,
  rowText,
  startFakeLlm,
  type FakeLlm,
} from "./support/fake-llm-server.ts";
import { quietLogger, startHarness, type Harness } from "./support/gleaner-harness.ts";
import { ManualClock } from "./support/manual-clock.ts";
import { createMetrics } from "../src/metrics/create-metrics.ts";
import { VALUE_AGE_REFRESH_MS } from "../src/metrics/value-age-collectors.ts";
import { parseSamples } from "./support/prometheus-text.ts";

/**
 * Freshness on real PostgreSQL with the fake LLM and a clock the test moves: a value older than
 * its output's `ttl` makes the row due again through its next_at (the due index, no scan); the
 * re-run asks only the stage filling it (the other stage costs nothing: the answer cache is off,
 * so every call would be paid), and the earlier value is kept in the column's history.
 */

const DAY = 86_400_000;
let llm: FakeLlm;
let h: Harness;
let app: Gleaner;
let clock: ManualClock;
let asked: Record<string, number> = {};
/** What the fake answers for `employees`. */
let employees = 100;

const config = () => `
llm:
  cache_ttl: 0s
  backends:
    - { name: fake, base_url: ${llm.url}, model: fake, timeout: 10s }
pipelines:
  orgs:
    table: public.orgs
    inputs: [name]
    outputs:
      industry: { type: text, description: "Industry" }
      employees: { type: integer, description: "Employees", ttl: 90d }
    stages:
      - { name: classify, kind: llm, backends: [fake], prompt: "{{name}}", outputs: [industry] }
      - { name: count, kind: llm, backends: [fake], prompt: "{{name}}", outputs: [employees] }
`;

beforeAll(async () => {
  llm = await startFakeLlm();
  const answer = answerRows((id, prompt) =>
    prompt.includes("- employees (")
      ? { employees: { value: employees, confidence: 0.9 } }
      : { industry: { value: `industry of ${rowText(prompt, id)}`, confidence: 0.9 } },
  );
  llm.handle((req) => {
    const format = req.responseFormat as { json_schema?: { name?: string } } | undefined;
    const stage = (format?.json_schema?.name ?? "").replace(/_answer$/, "");
    asked[stage] = (asked[stage] ?? 0) + rowIdsInPrompt(req.prompt).length;
    return answer(req);
  });
  h = await startHarness("freshness", config());
  clock = new ManualClock(Date.now());
  app = await openGleaner(
    parseConfig(config(), { env: { ...process.env, DATABASE_URL: h.testDb.url } }),
    { env: { DATABASE_URL: h.testDb.url }, logger: quietLogger, clock },
  );
});

afterAll(async () => {
  await app?.close();
  await h?.close();
  await llm?.close();
});

const runAll = async () => {
  const result = await drain({
    runtime: app.runtime,
    url: h.testDb.url,
    logger: quietLogger,
    timeoutMs: 30_000,
  });
  if (result.timedOut) throw new Error("drain timed out");
};

interface Row {
  name: string;
  industry: string;
  employees: number | null;
  enrichment_status: string;
  enrichment_attempts: number;
  enrichment_state: RowState;
  due_in_days: number | null;
}

const rows = () =>
  h.query<Row>(
    `select name, industry, employees, enrichment_status, enrichment_attempts, enrichment_state,
        (extract(epoch from enrichment_next_at - now()) / 86400)::float8 as due_in_days
      from orgs order by id`,
  );

describe("freshness: outputs.<c>.ttl", () => {
  it("makes a row due when its first value expires", async () => {
    await h.query("insert into orgs (name) values ('Acme'), ('Globex')");
    await runAll();
    expect(asked).toEqual({ classify: 2, count: 2 });
    for (const row of await rows()) {
      expect(row).toMatchObject({ employees: 100, enrichment_status: "done" });
      expect(row.due_in_days).toBeGreaterThan(89.9);
      expect(row.due_in_days).toBeLessThan(90.1);
    }
  });

  it("re-runs only the stage filling the expired value, and keeps the earlier one", async () => {
    const before = await rows();
    clock.advance(91 * DAY);
    // The database's clock cannot move: its side of 91 days passing is the due time arriving.
    await h.query("update orgs set enrichment_next_at = now()");
    employees = 120;
    asked = {};
    await runAll();
    expect(asked).toEqual({ count: 2 });
    const after = await rows();
    for (const row of after) {
      const old = before.find((r) => r.name === row.name) as Row;
      expect(row).toMatchObject({
        employees: 120,
        industry: old.industry,
        enrichment_status: "done",
        // A new cycle, not a retry.
        enrichment_attempts: 1,
      });
      expect(row.enrichment_state.stages?.classify).toEqual(old.enrichment_state.stages?.classify);
      const employeesAt = row.enrichment_state.columns?.employees;
      expect(employeesAt?.history).toEqual([
        expect.objectContaining({
          value: 100,
          stage: "count",
          at: old.enrichment_state.columns?.employees?.at,
        }),
      ]);
      // Found by the clock the test moved, and due a ttl after it.
      expect(Date.parse(employeesAt?.at ?? "")).toBeGreaterThanOrEqual(clock.now() - 60_000);
      expect(row.due_in_days).toBeGreaterThan(89.9);
    }
  });

  it("does not loop when a re-run finds no value: the old one stays, checked a ttl later", async () => {
    const old = await rows();
    clock.advance(91 * DAY);
    await h.query("update orgs set enrichment_next_at = now()");
    llm.handle(answerRows(() => ({ employees: { value: null, confidence: 0 } })));
    await runAll();
    for (const row of await rows()) {
      expect(row.employees).toBe(120);
      expect(row.due_in_days).toBeGreaterThan(89.9);
      expect(row.enrichment_state.columns?.employees?.at).toBe(
        old.find((r) => r.name === row.name)?.enrichment_state.columns?.employees?.at,
      );
    }
  });

  it("never expires a value a user wrote", async () => {
    await h.query("insert into orgs (name, employees, industry) values ('Initech', 7, 'Software')");
    await runAll();
    const [row] = await h.query<Row>(
      "select employees, enrichment_next_at is null as never_due from orgs where name = 'Initech'",
    );
    expect(row).toMatchObject({ employees: 7, never_due: true });
  });

  it("refuses a ttl under a minute, naming the key", () => {
    expect(() =>
      parseConfig(config().replace("ttl: 90d", "ttl: 5s"), {
        env: { ...process.env, DATABASE_URL: h.testDb.url },
      }),
    ).toThrow(/pipelines\.orgs\.outputs\.employees\.ttl.*at least 1m/);
  });

  it("exports the oldest value's age, an age histogram and the ttl, refreshed every five minutes", async () => {
    const metrics = createMetrics(app.runtime);
    try {
      const scrape = async () => parseSamples(await metrics.registry.metrics());
      const find = (samples: Awaited<ReturnType<typeof scrape>>, name: string, le?: string) =>
        samples.find(
          (s) =>
            s.name === name &&
            s.labels.pipeline === "orgs" &&
            s.labels.column === "employees" &&
            (le === undefined || s.labels.le === le),
        )?.value;
      let samples = await scrape();
      expect(find(samples, "gleaner_value_ttl_seconds")).toBe(90 * 86_400);
      // Two values found by Gleaner (Initech's was written by a user and has no age).
      expect(find(samples, "gleaner_value_age_rows", "+Inf")).toBe(2);
      expect(find(samples, "gleaner_value_age_rows", "3600")).toBe(2);
      const oldest = find(samples, "gleaner_value_age_seconds") ?? -1;
      expect(oldest).toBeGreaterThanOrEqual(0);
      expect(oldest).toBeLessThan(3_600);
      // No column without a ttl is reported.
      expect(
        samples.some(
          (s) => s.name === "gleaner_value_age_seconds" && s.labels.column === "industry",
        ),
      ).toBe(false);

      // A figure a minute old is served as it is; past five minutes it is read again.
      await h.query(
        `update orgs set enrichment_state = jsonb_set(enrichment_state, '{columns,employees,at}',
           to_jsonb(to_char((now() - interval '100 days') at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')))
         where name = 'Acme'`,
      );
      clock.advance(60_000);
      samples = await scrape();
      expect(find(samples, "gleaner_value_age_rows", "+Inf")).toBe(2);
      expect(find(samples, "gleaner_value_age_seconds")).toBe(oldest);
      clock.advance(VALUE_AGE_REFRESH_MS);
      samples = await scrape();
      expect(find(samples, "gleaner_value_age_seconds")).toBeGreaterThan(99 * 86_400);
      expect(find(samples, "gleaner_value_age_rows", "7776000")).toBe(1);
      expect(find(samples, "gleaner_value_age_rows", "15552000")).toBe(2);
    } finally {
      metrics.close();
    }
  });
});
