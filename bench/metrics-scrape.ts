/**
 * A /metrics scrape (registry.metrics()) over a big table, next to the naive way of getting the
 * same counts (count(*) by status) measured in the same run.
 *
 *   node --import tsx bench/metrics-scrape.ts [rows] [due]
 *
 * Aim: < 50 ms per scrape on 10 million rows. A second figure shows the backlog count at its
 * cap (100,000 due rows counted), its worst case.
 */
import { pino } from "pino";
import { openGleaner } from "../src/app/open-gleaner.ts";
import { parseConfig } from "../src/config/load-config.ts";
import { createMetrics } from "../src/metrics/create-metrics.ts";
import { BACKLOG_CAP } from "../src/sql/count-backlog.ts";
import { createBenchDatabase, fmt } from "./support/bench-database.ts";

const ROWS = Number(process.argv[2] ?? 10_000_000);
const DUE = Number(process.argv[3] ?? 10_000);
const CHUNK = 1_000_000;
const SCRAPES = 50;

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((s.length * p) / 100))] ?? Number.NaN;
}

async function main() {
  const db = await createBenchDatabase("metrics");
  try {
    const config = parseConfig(
      `
llm:
  budget_usd_per_hour: 5
  backends: [{ name: fake, base_url: "http://127.0.0.1:9/v1", model: fake }]
pipelines:
  items:
    table: items
    inputs: [name]
    outputs:
      label: { type: text, description: "A label" }
      score: { type: integer, description: "A score" }
    stages:
      - { name: label, kind: llm, backends: [fake], prompt: "Label {{name}}", outputs: [label, score] }
`,
      { env: { DATABASE_URL: db.url } },
    );
    const app = await openGleaner(config, {
      env: { DATABASE_URL: db.url },
      logger: pino({ level: "warn" }),
      migrate: true,
    });
    const q = (text: string, params: unknown[] = []) => app.database.pool.query(text, params);
    const loadStart = performance.now();
    // Already-enriched rows, as a big table in steady state has (see bench/sweep-tick.ts).
    for (let from = 1; from <= ROWS; from += CHUNK) {
      const to = Math.min(ROWS, from + CHUNK - 1);
      await q(
        `insert into items (name, label, score, enrichment_status, enrichment_confidence, enrichment_next_at, enriched_at)
         select 'item' || i, 'label', case when i % 10 = 0 then null else i end, 'done', 0.9, null, now()
         from generate_series($1::int, $2::int) i`,
        [from, to],
      );
    }
    // Some work waiting: retries come due scattered over the table, and a burst of new rows.
    await q(
      `update items set enrichment_status = 'failed', enrichment_next_at = now() - interval '5 minutes'
       where id in (select (random() * ${ROWS - 1} + 1)::bigint from generate_series(1, $1))`,
      [DUE],
    );
    await q(`insert into items (name) select 'new' || i from generate_series(1, $1::int) i`, [
      DUE / 10,
    ]);
    await q("vacuum analyze items");
    console.log(`loaded ${fmt(ROWS)} rows in ${fmt((performance.now() - loadStart) / 1000, 1)} s`);

    const metrics = createMetrics(app.runtime);
    const scrape = async (n: number) => {
      await metrics.registry.metrics(); // warm: plans and pages cached, as for any later scrape
      const times: number[] = [];
      for (let i = 0; i < n; i++) {
        const t = performance.now();
        await metrics.registry.metrics();
        times.push(performance.now() - t);
      }
      return times;
    };
    const backlogLine = async () =>
      (await metrics.registry.metrics()).split("\n").find((l) => l.startsWith("gleaner_backlog_"));

    const steady = await scrape(SCRAPES);
    const steadyBacklog = await backlogLine();

    // The naive alternative: count the table itself.
    const naive: number[] = [];
    for (let i = 0; i < 3; i++) {
      const t = performance.now();
      await q("select enrichment_status, count(*) from items group by 1");
      naive.push(performance.now() - t);
    }

    // The worst case of the backlog count: more rows due than it counts.
    const saturate = Math.round(BACKLOG_CAP * 1.5);
    await q(
      `update items set enrichment_status = 'failed', enrichment_next_at = now() - interval '5 minutes'
       where id in (select (random() * ${ROWS - 1} + 1)::bigint from generate_series(1, $1))`,
      [saturate],
    );
    await q("vacuum analyze items");
    const saturated = await scrape(20);
    const saturatedBacklog = await backlogLine();

    metrics.close();
    await app.close();
    console.log(`table: ${fmt(ROWS)} rows, about ${fmt(DUE + DUE / 10)} due`);
    console.log(
      `scrape (registry.metrics()): median ${fmt(percentile(steady, 50), 2)} ms, p95 ${fmt(percentile(steady, 95), 2)} ms over ${SCRAPES} scrapes (aim < 50 ms); ${steadyBacklog}`,
    );
    console.log(
      `baseline, count(*) by status over the table: median ${fmt(percentile(naive, 50), 0)} ms (3 runs)`,
    );
    console.log(
      `scrape with ~${fmt(saturate)} more rows due (backlog count at its ${fmt(BACKLOG_CAP)} cap): median ${fmt(percentile(saturated, 50), 2)} ms, p95 ${fmt(percentile(saturated, 95), 2)} ms over 20 scrapes; ${saturatedBacklog}`,
    );
  } finally {
    await db.drop();
  }
}

await main();
