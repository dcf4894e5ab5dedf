/**
 * What drift and freshness cost on a large table (default 1,000,000 done rows, `N=` to change):
 *
 *   (a) one drift release (src/sql/release-drifted-rows.ts) of 100 rows when every row is of an
 *       older version (right after a config change), when only 100 are left among the rest, and
 *       when none is left (what every sweep tick pays with on_version_change: reprocess);
 *   (b) for contrast, finding the older rows by a scan (`count(*) where version <> current`);
 *   (c) one read of the value ages /metrics serves (src/sql/value-ages.ts), done at most every
 *       five minutes, over the table's ttl column.
 *
 * Times are medians of 5 runs, on the PostgreSQL named by DATABASE_URL (or the local one).
 *
 *   N=1000000 node --import tsx bench/drift-freshness-cost.ts
 */
import { sql } from "kysely";
import { pino } from "pino";
import { openGleaner } from "../src/app/open-gleaner.ts";
import { parseConfig } from "../src/config/load-config.ts";
import { releaseDriftedRows } from "../src/sql/release-drifted-rows.ts";
import { readValueAges } from "../src/sql/value-ages.ts";
import { createBenchDatabase, fmt } from "./support/bench-database.ts";

const N = Number(process.env.N ?? 1_000_000);
const db = await createBenchDatabase("drift");
const config = parseConfig(
  `
llm:
  backends: [{ name: fake, base_url: "http://127.0.0.1:9/v1", model: fake }]
pipelines:
  big:
    table: big
    inputs: [name]
    on_version_change: reprocess
    drift_rows_per_hour: 1200
    outputs:
      employees: { type: integer, description: "Employees", ttl: 90d }
    stages:
      - { name: count, kind: llm, backends: [fake], prompt: "{{name}}", outputs: [employees] }
`,
  { env: { ...process.env, DATABASE_URL: db.url } },
);
const app = await openGleaner(config, {
  env: { DATABASE_URL: db.url },
  logger: pino({ level: "silent" }),
  migrate: true,
});
const p = app.runtime.pipelines.get("big")?.pipeline;
if (!p) throw new Error("no pipeline");
const q = (text: string, params: unknown[] = []) => app.database.pool.query(text, params);

async function median(
  run: () => Promise<unknown>,
  after?: () => Promise<unknown>,
): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < 5; i++) {
    const started = performance.now();
    await run();
    times.push(performance.now() - started);
    await after?.();
  }
  return times.sort((a, b) => a - b)[2] as number;
}

try {
  const loadStarted = performance.now();
  await q(
    `insert into big (name, employees, enrichment_status, enrichment_confidence, enrichment_next_at,
        enrichment_attempts, enriched_at, enrichment_state)
     select 'org' || i, i, 'done', 0.9, now() + interval '80 days', 1, now(),
       jsonb_build_object('version', 'older',
         'columns', jsonb_build_object('employees', jsonb_build_object('value', i,
           'confidence', 0.9, 'stage', 'count', 'version', 'older',
           'at', to_char((now() - (i % 90) * interval '1 day') at time zone 'UTC',
             'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))))
     from generate_series(1, $1::int) i`,
    [N],
  );
  await q("vacuum analyze big");
  console.log(
    `loaded ${fmt(N)} done rows in ${fmt((performance.now() - loadStarted) / 1000, 1)} s`,
  );

  // A clock far ahead, moved an hour per release: the bucket is full each time (five minutes at
  // 1,200 an hour: 100 rows).
  let now = Date.now() + 86_400_000;
  const release = async () => {
    now += 3_600_000;
    return releaseDriftedRows(app.database.db, config.schema, p, now);
  };
  // Released rows are made not-due again between runs, as the sweep claiming them would.
  const undo = () =>
    q(
      "update big set enrichment_next_at = now() + interval '80 days' where enrichment_next_at <= now()",
    );
  await release(); // fills the bucket's first row
  const timed = async (label: string) => {
    let released = 0;
    const ms = await median(async () => {
      released = await release();
    }, undo);
    console.log(`${label}: ${released} rows released, ${fmt(ms, 1)} ms`);
  };
  await timed(`(a) every one of ${fmt(N)} rows older`);
  await q(
    `update big set enrichment_state = jsonb_set(enrichment_state, '{version}', to_jsonb($1::text)) where id > 100`,
    [p.version],
  );
  await q("vacuum analyze big");
  await timed("(a) 100 older rows left");
  await q(
    `update big set enrichment_state = jsonb_set(enrichment_state, '{version}', to_jsonb($1::text)) where id <= 100`,
    [p.version],
  );
  await timed("(a) none left (an idle tick)");
  const scan = await median(() =>
    q(`select count(*) from big where enrichment_state ->> 'version' <> $1`, [p.version]),
  );
  console.log(`(b) scan for older rows: ${fmt(scan, 1)} ms`);
  const plan = await sql<{ "QUERY PLAN": string }>`explain (analyze, buffers, costs off)
    select id from big t where enrichment_status = 'done' and (enrichment_state ->> 'version') < ${p.version}
    order by (enrichment_state ->> 'version') desc limit 100`.execute(app.database.db);
  console.log(plan.rows.map((r) => `    ${r["QUERY PLAN"]}`).join("\n"));
  const ages = await median(() => readValueAges(app.database.db, p));
  console.log(`(c) value ages read (every 5 minutes at most): ${fmt(ages, 1)} ms`);
} finally {
  await app.close();
  await db.drop();
}
