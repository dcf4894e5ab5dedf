/**
 * The status page's rows view on a big table: page 1 against a deep page, read with the keyset
 * statement Gleaner runs (src/sql/pipeline-rows.ts), and, as the baseline it replaces, the same
 * page read with OFFSET. Prints each statement's execution time (median of 20 EXPLAIN ANALYZE
 * runs), the rows its index scan walked and the buffers it touched.
 *
 *   node --import tsx bench/rows-page.ts [rows] [page]
 *
 * Aim: the deep page costs what page 1 costs (same rows walked, same buffers).
 */
import { pino } from "pino";
import { openGleaner } from "../src/app/open-gleaner.ts";
import { parseConfig } from "../src/config/load-config.ts";
import { rowsPageQuery, type RowsFilter } from "../src/sql/pipeline-rows.ts";
import { createBenchDatabase, fmt } from "./support/bench-database.ts";

const ROWS = Number(process.argv[2] ?? 50_000);
const PAGE_NO = Number(process.argv[3] ?? 500);
const PAGE = 50;
const RUNS = 20;

interface PlanNode {
  "Node Type": string;
  "Actual Rows": number;
  "Shared Hit Blocks": number;
  "Shared Read Blocks": number;
  Plans?: PlanNode[];
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? Number.NaN;
}

async function main() {
  const db = await createBenchDatabase("rows_page");
  try {
    const config = parseConfig(
      `
llm:
  backends: [{ name: fake, base_url: "http://127.0.0.1:9/v1", model: fake }]
pipelines:
  items:
    table: items
    inputs: [name]
    outputs: { label: { type: text, description: "A label" } }
    stages:
      - { name: label, kind: llm, backends: [fake], prompt: "Label {{name}}", outputs: [label] }
`,
      { env: { DATABASE_URL: db.url } },
    );
    const app = await openGleaner(config, {
      env: { DATABASE_URL: db.url },
      logger: pino({ level: "warn" }),
      migrate: true,
    });
    const p = app.runtime.pipelines.get("items")!.pipeline;
    const q = (text: string, params: unknown[] = []) => app.database.pool.query(text, params);
    await q(`
      insert into items (name, label, enrichment_status, enrichment_confidence, enrichment_state,
                         enrichment_next_at)
      select 'item ' || i, 'label ' || i, 'done', case when i % 3 = 0 then 0.4 else 0.9 end,
        jsonb_build_object('columns', jsonb_build_object('label', jsonb_build_object(
          'value', 'label ' || i, 'confidence', case when i % 3 = 0 then 0.4 else 0.9 end,
          'stage', 'label', 'version', 'v', 'at', now()))), null
      from generate_series(1, ${ROWS}) i`);
    await q("vacuum analyze items");

    const measure = async (label: string, text: string, params: readonly unknown[]) => {
      const times: number[] = [];
      let scan: PlanNode | undefined;
      let blocks = 0;
      for (let i = 0; i < RUNS; i++) {
        const { rows } = await q(`explain (analyze, buffers, format json) ${text}`, [...params]);
        const plan = (rows[0] as { "QUERY PLAN": [{ Plan: PlanNode; "Execution Time": number }] })[
          "QUERY PLAN"
        ][0];
        times.push(plan["Execution Time"]);
        scan = plan.Plan.Plans?.[0];
        blocks = (scan?.["Shared Hit Blocks"] ?? 0) + (scan?.["Shared Read Blocks"] ?? 0);
      }
      console.log(
        `${label.padEnd(34)} ${fmt(median(times), 3).padStart(8)} ms  ${scan?.["Node Type"]} walked ${fmt(scan?.["Actual Rows"] ?? 0)} rows, ${fmt(blocks)} buffers`,
      );
    };

    console.log(`${fmt(ROWS)} rows, ${PAGE} per page, median of ${RUNS} EXPLAIN ANALYZE runs`);
    for (const [name, filter, perPage] of [
      ["all rows", {}, PAGE],
      ["under review", { review: true }, PAGE * 3],
    ] as [string, RowsFilter, number][]) {
      const deep = Math.min(PAGE_NO, Math.floor(ROWS / perPage) - 1);
      const first = rowsPageQuery(p, config.schema, filter, undefined, PAGE).compile(
        app.database.db,
      );
      const last = rowsPageQuery(
        p,
        config.schema,
        filter,
        String((deep - 1) * perPage),
        PAGE,
      ).compile(app.database.db);
      await measure(`${name}: keyset page 1`, first.sql, first.parameters);
      await measure(`${name}: keyset page ${deep}`, last.sql, last.parameters);
      // The baseline: page 1's statement with OFFSET instead of a key to start after.
      await measure(
        `${name}: OFFSET page ${deep}`,
        first.sql.replace(/limit (\$\d+)$/, `limit $1 offset ${(deep - 1) * PAGE}`),
        first.parameters,
      );
    }
    await app.close();
  } finally {
    await db.drop();
  }
}

await main();
