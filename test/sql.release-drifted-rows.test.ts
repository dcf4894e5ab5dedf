import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openGleaner, type Gleaner } from "../src/app/open-gleaner.ts";
import { parseConfig } from "../src/config/load-config.ts";
import type { InstalledPipeline } from "../src/pipeline/installed-pipeline.ts";
import type { RowState } from "../src/pipeline/row-state.ts";
import { releaseDriftedRows } from "../src/sql/release-drifted-rows.ts";
import { startScheduler } from "../src/sweep/scheduler.ts";
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

/**
 * Drift on real PostgreSQL with the fake LLM and a clock the test moves: after stage 2's prompt
 * changes, `on_version_change: reprocess` re-runs the older rows at `drift_rows_per_hour`, and
 * stage 1, unchanged, is reused (no call at all: the LLM answer cache is off, so every call the
 * fake receives would be paid).
 */

let llm: FakeLlm;
let h: Harness;
/** Rows asked per stage since the last reset. */
let asked: Record<string, number> = {};
/** A clock a day ahead of the database's: only the test's moves add to the allowance. */
const clock = new ManualClock(Date.now() + 86_400_000);

const config = (bPrompt: string) => `
llm:
  cache_ttl: 0s
  backends:
    - { name: fake, base_url: ${llm.url}, model: fake, timeout: 10s }
pipelines:
  two:
    table: public.two
    inputs: [name]
    on_version_change: reprocess
    drift_rows_per_hour: 60
    outputs:
      a: { type: text, description: "a" }
      b: { type: text, description: "b" }
    stages:
      - { name: s1, kind: llm, backends: [fake], prompt: "A of {{name}}", outputs: [a] }
      - { name: s2, kind: llm, backends: [fake], prompt: "${bPrompt}", outputs: [b] }
`;

beforeAll(async () => {
  llm = await startFakeLlm();
  const answer = answerRows((id, prompt) => {
    const field = /^- ([a-z]+) \(/m.exec(prompt)?.[1] ?? "?";
    return { [field]: { value: `${field}:${rowText(prompt, id)}`, confidence: 0.9 } };
  });
  llm.handle((req) => {
    const format = req.responseFormat as { json_schema?: { name?: string } } | undefined;
    const stage = (format?.json_schema?.name ?? "").replace(/_answer$/, "");
    asked[stage] = (asked[stage] ?? 0) + rowIdsInPrompt(req.prompt).length;
    return answer(req);
  });
  h = await startHarness("drift", config("B of {{a}}"));
  await h.query("insert into two (name) select 'n' || i from generate_series(1, 6) i");
  await h.drain();
});

afterAll(async () => {
  await h?.close();
  await llm?.close();
});

interface Row {
  name: string;
  a: string;
  b: string;
  enrichment_status: string;
  enrichment_attempts: number;
  enrichment_state: RowState;
}

const rows = () =>
  h.query<Row>(
    "select name, a, b, enrichment_status, enrichment_attempts, enrichment_state from two order by id",
  );

describe("drift: on_version_change: reprocess", () => {
  it("re-runs older rows at the configured rate, reusing the unchanged stage", async () => {
    const before = await rows();
    expect(before.every((r) => r.b === `b:B of a:A of ${r.name}`)).toBe(true);
    const oldVersion = before[0]?.enrichment_state.version;
    // Each row done once, in one attempt of its own cycle (twice would do as well).
    await h.query("update two set enrichment_attempts = 5 where id = 1");

    const app: Gleaner = await openGleaner(
      parseConfig(config("B, again, of {{a}}"), {
        env: { ...process.env, DATABASE_URL: h.testDb.url },
      }),
      { env: { DATABASE_URL: h.testDb.url }, logger: quietLogger, migrate: true },
    );
    try {
      const p = app.runtime.pipelines.get("two")?.pipeline as InstalledPipeline;
      expect(p.version).not.toBe(oldVersion);
      const release = () => releaseDriftedRows(app.database.db, "gleaner", p, clock.now());
      const runAll = async () => {
        const result = await drain({
          runtime: app.runtime,
          url: h.testDb.url,
          logger: quietLogger,
          timeoutMs: 30_000,
        });
        if (result.timedOut) throw new Error("drain timed out");
      };

      // The allowance starts empty; 60 an hour is one a minute.
      expect(await release()).toBe(0);
      clock.advance(2 * 60_000);
      asked = {};
      expect(await release()).toBe(2);
      expect(await release()).toBe(0);
      await runAll();
      expect(asked).toEqual({ s2: 2 });
      let after = await rows();
      const redone = after.filter((r) => r.enrichment_state.version === p.version);
      expect(redone).toHaveLength(2);
      for (const r of redone) {
        expect(r).toMatchObject({
          a: `a:A of ${r.name}`,
          b: `b:B, again, of a:A of ${r.name}`,
          enrichment_status: "done",
          // A new cycle: the attempts of the last one are not carried on.
          enrichment_attempts: 1,
        });
        const old = before.find((x) => x.name === r.name) as Row;
        // Stage 1's record is the very one from before; the old `b` is kept in its history.
        expect(r.enrichment_state.stages?.s1).toEqual(old.enrichment_state.stages?.s1);
        expect(r.enrichment_state.columns?.b?.history?.[0]).toMatchObject({
          value: `b:B of a:A of ${r.name}`,
          version: oldVersion,
        });
      }

      // Ten minutes later the allowance is capped at five minutes' worth: the four left go.
      clock.advance(10 * 60_000);
      asked = {};
      expect(await release()).toBe(4);
      await runAll();
      expect(asked).toEqual({ s2: 4 });
      after = await rows();
      expect(after.every((r) => r.enrichment_state.version === p.version)).toBe(true);
      expect(after.every((r) => r.b === `b:B, again, of a:A of ${r.name}`)).toBe(true);
      clock.advance(10 * 60_000);
      expect(await release()).toBe(0);
    } finally {
      await app.close();
    }
  });

  it("finds older rows by index probes, not a scan", async () => {
    const [p] = await h.query<{ version: string }>(
      "select enrichment_state ->> 'version' as version from two limit 1",
    );
    await h.query("set enable_seqscan = off");
    try {
      const plan = await h.query<{ "QUERY PLAN": string }>(
        `explain select id from two t where enrichment_status = 'done'
           and (enrichment_state ->> 'version') < $1 order by 1 limit 5`,
        [p?.version],
      );
      expect(plan.map((r) => r["QUERY PLAN"]).join("\n")).toContain("gleaner_two_version");
    } finally {
      await h.query("reset enable_seqscan");
    }
  });

  it("is run by the scheduler's ticks, before the sweep that claims what it released", async () => {
    const app: Gleaner = await openGleaner(
      parseConfig(config("B, third, of {{a}}"), {
        env: { ...process.env, DATABASE_URL: h.testDb.url },
      }),
      { env: { DATABASE_URL: h.testDb.url }, logger: quietLogger, migrate: true },
    );
    const p = app.runtime.pipelines.get("two")?.pipeline as InstalledPipeline;
    const scheduler = await startScheduler({
      db: app.database.db,
      pool: app.database.pool,
      config: app.config,
      pipelines: [p],
      log: () => {},
      listen: false,
      clock,
    });
    const queued = async () =>
      (
        await h.query<{ n: number }>(
          "select count(*)::int as n from two where enrichment_status = 'queued'",
        )
      )[0]?.n;
    try {
      // The allowance left from the last test is full: five minutes' worth, claimed at once.
      await scheduler.kick("two");
      expect(await queued()).toBe(5);
      await scheduler.kick("two");
      expect(await queued()).toBe(5);
      clock.advance(60_000);
      await scheduler.kick("two");
      expect(await queued()).toBe(6);
    } finally {
      await scheduler.stop();
      await app.close();
    }
  });
});
