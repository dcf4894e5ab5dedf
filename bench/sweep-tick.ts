/**
 * A sweep tick (find, claim, enqueue) over a big table: with 10,000 rows due, and with none.
 *
 *   node --import tsx bench/sweep-tick.ts [rows] [due]
 *
 * Aims: < 200 ms with 10,000 due, < 5 ms with nothing due, on 10 million rows.
 */
import { pino } from "pino";
import { openGleaner } from "../src/app/open-gleaner.ts";
import { parseConfig } from "../src/config/load-config.ts";
import { claimDueRows } from "../src/sql/claim-due-rows.ts";
import { sweepPipeline } from "../src/sweep/sweep-pipeline.ts";
import { createBenchDatabase, fmt } from "./support/bench-database.ts";

const ROWS = Number(process.argv[2] ?? 10_000_000);
const DUE = Number(process.argv[3] ?? 10_000);
const CHUNK = 1_000_000;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? Number.NaN;
}

async function main() {
  const db = await createBenchDatabase("sweep");
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
    sweep_limit: ${DUE}
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
    const pipeline = app.runtime.pipelines.get("items")!.pipeline;
    const q = (text: string, params: unknown[] = []) => app.database.pool.query(text, params);
    const loadStart = performance.now();
    // Already-enriched rows, as a big table in steady state has: done, nothing due.
    for (let from = 1; from <= ROWS; from += CHUNK) {
      const to = Math.min(ROWS, from + CHUNK - 1);
      await q(
        `insert into items (name, label, enrichment_status, enrichment_confidence, enrichment_next_at, enriched_at)
         select 'item' || i, 'label', 'done', 0.9, null, now() from generate_series($1::int, $2::int) i`,
        [from, to],
      );
    }
    await q("vacuum analyze items");
    console.log(`loaded ${fmt(ROWS)} rows in ${fmt((performance.now() - loadStart) / 1000, 1)} s`);

    const emptyClaims: number[] = [];
    const emptyTicks: number[] = [];
    for (let i = 0; i < 50; i++) {
      let t = performance.now();
      await claimDueRows(app.database.db, config, pipeline, DUE);
      emptyClaims.push(performance.now() - t);
      t = performance.now();
      await sweepPipeline(app.database.db, config, pipeline);
      emptyTicks.push(performance.now() - t);
    }
    // Two shapes of "10,000 due": the newest rows (a burst of inserts, contiguous at the end of
    // the table) and rows scattered over the whole table (retries coming due).
    const measure = async (label: string, makeDue: string) => {
      const times: number[] = [];
      for (let round = 0; round < 5; round++) {
        await q(makeDue, [DUE]);
        const t = performance.now();
        const result = await claimDueRows(app.database.db, config, pipeline, DUE);
        times.push(performance.now() - t);
        if (round === 0)
          console.log(
            `${label}: claimed ${fmt(result.claimed)} rows into ${fmt(result.jobs)} jobs`,
          );
        await q(`delete from graphile_worker._private_jobs`);
        await q(
          `update items set enrichment_status = 'done', enrichment_next_at = null, enrichment_claim = null where enrichment_status = 'queued'`,
        );
      }
      return times;
    };
    const newest = await measure(
      "newest rows due",
      `update items set enrichment_status = 'pending', enrichment_next_at = now() - interval '1 second'
       where id > (select max(id) from items) - $1`,
    );
    const scattered = await measure(
      "scattered rows due",
      `update items set enrichment_status = 'failed', enrichment_next_at = now() - interval '1 second'
       where id in (select (random() * ${ROWS - 1} + 1)::bigint from generate_series(1, $1))`,
    );
    // What bounds the claim: the same row update alone, under EXPLAIN (ANALYZE, BUFFERS, WAL)
    // and rolled back, for each shape: the pages it reads and dirties and the WAL it writes
    // (a page first dirtied since the last checkpoint is logged whole: a full-page image).
    const bounds: string[] = [];
    for (const [label, makeDue] of [
      [
        "newest",
        `update items set enrichment_status = 'pending', enrichment_next_at = now() - interval '1 second'
         where id > (select max(id) from items) - $1`,
      ],
      [
        "scattered",
        `update items set enrichment_status = 'failed', enrichment_next_at = now() - interval '1 second'
         where id in (select (random() * ${ROWS - 1} + 1)::bigint from generate_series(1, $1))`,
      ],
    ] as const) {
      await q(makeDue, [DUE]);
      await q("checkpoint");
      const client = await app.database.pool.connect();
      try {
        await client.query("begin");
        const plan = await client.query<{ "QUERY PLAN": [Record<string, unknown>] }>(
          `explain (analyze, buffers, wal, format json)
           update items set enrichment_status = 'queued', enrichment_claim = gen_random_uuid(),
             enrichment_attempts = enrichment_attempts + 1,
             enrichment_next_at = now() + interval '30 minutes'
           where id in (select id from items where enrichment_next_at <= now()
                        order by enrichment_next_at limit $1 for update skip locked)`,
          [DUE],
        );
        await client.query("rollback");
        const top = plan.rows[0]?.["QUERY PLAN"][0] as Record<string, unknown>;
        const node = top["Plan"] as Record<string, number>;
        bounds.push(
          `${label}: ${fmt(Number(top["Execution Time"]), 1)} ms; shared buffers hit ${fmt(node["Shared Hit Blocks"] ?? 0)}, read ${fmt(node["Shared Read Blocks"] ?? 0)}, dirtied ${fmt(node["Shared Dirtied Blocks"] ?? 0)}; WAL ${fmt(node["WAL Records"] ?? 0)} records, ${fmt(node["WAL FPI"] ?? 0)} full-page images, ${fmt((node["WAL Bytes"] ?? 0) / 1e6, 1)} MB`,
        );
      } finally {
        client.release();
      }
      await q(
        `update items set enrichment_status = 'done', enrichment_next_at = null where enrichment_next_at is not null`,
      );
    }
    await app.close();
    console.log(`table: ${fmt(ROWS)} rows`);
    console.log(
      `tick with nothing due: claim ${fmt(median(emptyClaims), 2)} ms, whole tick (claim + counter compaction) ${fmt(median(emptyTicks), 2)} ms (median of 50)`,
    );
    for (const [label, times] of [
      ["the newest", newest],
      ["scattered", scattered],
    ] as const) {
      console.log(
        `tick with ${fmt(DUE)} ${label} rows due (find, claim, enqueue): ${fmt(median(times), 1)} ms (median of 5; all: ${times.map((x) => fmt(x, 0)).join(", ")})`,
      );
    }
    console.log(
      `the claim's row update alone, after a checkpoint (EXPLAIN ANALYZE BUFFERS WAL, rolled back):`,
    );
    for (const line of bounds) console.log(`  ${line}`);
  } finally {
    await db.drop();
  }
}

await main();
