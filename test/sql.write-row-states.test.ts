import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { InstalledPipeline } from "../src/pipeline/installed-pipeline.ts";
import { startClaimedRows } from "../src/sql/start-claimed-rows.ts";
import { writeRowStates } from "../src/sql/write-row-states.ts";
import { startFakeLlm, type FakeLlm } from "./support/fake-llm-server.ts";
import { startHarness, type Harness } from "./support/gleaner-harness.ts";

/**
 * The write-back on real PostgreSQL: it finds a job's rows by key through the key's index,
 * whatever the planner guesses of the JSON it joins (jsonb_to_recordset is always "100 rows").
 * Before the key array was part of the statement, a table of some ten thousand rows was read
 * whole on every write-back, measured at 3-12 ms of a 50-row job's database time.
 */

let llm: FakeLlm;
let h: Harness;
let pipeline: InstalledPipeline;

beforeAll(async () => {
  llm = await startFakeLlm();
  h = await startHarness(
    "write_row_states",
    `
llm:
  backends:
    - { name: fake, base_url: ${llm.url}, model: fake }
pipelines:
  items:
    table: public.items
    inputs: [name]
    job_size: 50
    outputs: { label: { type: text, description: "A label" } }
    stages:
      - { name: label, kind: llm, backends: [fake], prompt: "Label {{name}}", outputs: [label] }
`,
  );
  pipeline = h.app.runtime.pipelines.get("items")!.pipeline;
  await h.query("insert into items (name) select 'item' || i from generate_series(1, 20000) i");
  await h.sweep();
  await h.query("analyze items");
}, 60_000);

afterAll(async () => {
  await h?.close();
  await llm?.close();
});

describe("writeRowStates", () => {
  it("writes a job's rows through the key's index, never by reading the whole table", async () => {
    const [{ claim } = { claim: "" }] = await h.query<{ claim: string }>(
      "select enrichment_claim::text as claim from items where enrichment_claim is not null order by id limit 1",
    );
    const keys = (
      await h.query<{ id: string }>(
        "select id::text as id from items where enrichment_claim = $1 order by id",
        [claim],
      )
    ).map((r) => r.id);
    expect(keys).toHaveLength(50);
    const rows = await startClaimedRows(h.app.database.db, pipeline, claim, keys);

    const { written, seqScans } = await h.app.database.db.transaction().execute(async (trx) => {
      // The backend's scans of the table not yet sent to the statistics (pg_stat_xact_*: no
      // waiting for a flush), before and after: the difference is the write-back's.
      const seqScansNow = async () => {
        const r = await sql<{ seq_scan: string }>`
          select seq_scan::text from pg_stat_xact_user_tables where relname = 'items'`.execute(trx);
        return Number(r.rows[0]?.seq_scan ?? 0);
      };
      const before = await seqScansNow();
      const written = await writeRowStates(
        trx,
        pipeline,
        claim,
        rows.map((r) => ({
          key: r.key,
          xmin: r.xmin,
          state: r.state,
          status: "done",
          nextInMs: null,
          values: { label: `label of ${r.key}` },
          confidence: 0.9,
          enriched: true,
        })),
        true,
      );
      return { written, seqScans: (await seqScansNow()) - before };
    });

    expect(written.size).toBe(50);
    expect(seqScans).toBe(0);
    const done = await h.query<{ n: string }>(
      "select count(*)::text as n from items where enrichment_claim is null and label like 'label of %'",
    );
    expect(done[0]?.n).toBe("50");
  });
});
