import { afterAll, beforeAll, expect, it } from "vitest";
import { rowsPageQuery, type RowsFilter } from "../src/sql/pipeline-rows.ts";
import type { InstalledPipeline } from "../src/pipeline/installed-pipeline.ts";
import { MINIMAL_CONFIG_YAML } from "./support/minimal-config.ts";
import { startHarness, type Harness } from "./support/gleaner-harness.ts";

/**
 * Keyset paging of the rows view on 50,000 rows: page 500 is read the way page 1 is, by walking
 * the key's index from the previous page's last key, so it reads as many rows and buffers; the
 * statement never has an OFFSET. Asserted on the plan (EXPLAIN ANALYZE), not on wall time.
 */
const ROWS = 50_000;
const PAGE = 50;
let h: Harness;
let p: InstalledPipeline;

interface PlanNode {
  "Node Type": string;
  "Index Name"?: string;
  "Index Cond"?: string;
  "Actual Rows": number;
  "Shared Hit Blocks": number;
  "Shared Read Blocks": number;
  "Rows Removed by Filter"?: number;
  Plans?: PlanNode[];
}

beforeAll(async () => {
  h = await startHarness("pipeline_rows", MINIMAL_CONFIG_YAML);
  p = h.app.runtime.pipelines.get("orgs")!.pipeline;
  // Settled rows with a provenance each: every third one unsure.
  await h.query(`
    insert into orgs (name, city, enrichment_status, enrichment_confidence, enrichment_state,
                      enrichment_next_at)
    select 'org ' || i, 'city ' || i, 'done', case when i % 3 = 0 then 0.4 else 0.9 end,
      jsonb_build_object('columns', jsonb_build_object('city', jsonb_build_object(
        'value', 'city ' || i, 'confidence', case when i % 3 = 0 then 0.4 else 0.9 end,
        'stage', 'fill', 'version', 'v', 'at', now()))),
      null
    from generate_series(1, ${ROWS}) i`);
  await h.query("analyze orgs");
}, 120_000);

afterAll(async () => {
  await h?.close();
});

async function explain(filter: RowsFilter, after: string | undefined) {
  const compiled = rowsPageQuery(p, "gleaner", filter, after, PAGE).compile(h.app.database.db);
  const [result] = await h.query<{ "QUERY PLAN": [{ Plan: PlanNode }] }>(
    `explain (analyze, buffers, format json) ${compiled.sql}`,
    [...compiled.parameters],
  );
  return { sql: compiled.sql, plan: result!["QUERY PLAN"][0].Plan };
}

function nodes(plan: PlanNode): PlanNode[] {
  return [plan, ...(plan.Plans ?? []).flatMap(nodes)];
}

it("reads a deep page (500) like page 1: an index walk from the last key, never an OFFSET", async () => {
  for (const filter of [{}, { status: "done" as const }, { review: true }]) {
    const index = filter.review ? "gleaner_orgs_review" : "orgs_pkey";
    const first = await explain(filter, undefined);
    // The key of the row before page 500 (page n starts after n-1 pages of this filter); with
    // one row in three under review, page 300 is as deep as 50,000 rows go.
    const [deep, perPage] = filter.review ? [300, PAGE * 3] : [500, PAGE];
    const last = await explain(filter, String((deep - 1) * perPage));
    for (const { sql, plan } of [first, last]) {
      expect(sql).not.toMatch(/\boffset\b/i);
      expect(plan["Node Type"]).toBe("Limit");
      // Limit directly over the key's index: no sort of the table, no scan of it. (Sorts in
      // sub-plans order one row's own columns.)
      expect(plan.Plans?.[0]?.["Node Type"]).toBe("Index Scan");
      // Rows under review are walked in the pipeline's review index (rows below review_below).
      expect(plan.Plans?.[0]?.["Index Name"]).toBe(index);
      expect(nodes(plan).some((n) => n["Node Type"] === "Seq Scan")).toBe(false);
      expect(plan["Actual Rows"]).toBe(PAGE + 1);
    }
    const scanOf = (plan: PlanNode) => nodes(plan).find((n) => n["Index Name"] === index)!;
    expect(scanOf(last.plan)["Index Cond"]).toMatch(/id > /);
    // The same rows walked, so about the same buffers: page 500 costs what page 1 costs.
    const blocks = (plan: PlanNode) => {
      const scan = scanOf(plan);
      return scan["Shared Hit Blocks"] + scan["Shared Read Blocks"];
    };
    expect(scanOf(last.plan)["Actual Rows"]).toBe(scanOf(first.plan)["Actual Rows"]);
    expect(blocks(last.plan)).toBeLessThanOrEqual(blocks(first.plan) * 2 + 4);
  }
});

it("rebuilds the review index when review_below changes", async () => {
  const { installPipelineTable } = await import("../src/db/install-pipeline-table.ts");
  const indexes = () =>
    h.query<{ indexname: string; indexdef: string }>(
      "select indexname, indexdef from pg_indexes where tablename = 'orgs' and indexname like '%review%'",
    );
  expect((await indexes())[0]?.indexdef).toMatch(/enrichment_confidence < \(?0\.6/);
  await h.app.database.db
    .transaction()
    .execute((trx) => installPipelineTable(trx, { ...p, reviewBelow: 0.3 }, "gleaner"));
  const after = await indexes();
  expect(after).toHaveLength(1);
  expect(after[0]?.indexdef).toMatch(/enrichment_confidence < \(?0\.3/);
  const [installed] = await h.query<{ review_below: number }>(
    "select review_below from gleaner.pipelines where name = 'orgs'",
  );
  expect(installed?.review_below).toBeCloseTo(0.3);
});
