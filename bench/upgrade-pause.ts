/**
 * How long writers of a big table wait while an upgrade adds an index: a writer inserts one row
 * at a time into a migrated table of N pending rows while `migrate` installs a Gleaner version
 * whose DDL adds an index over all of them (simulated: the sweep's due index dropped and the
 * recorded DDL hash changed, as an upgrade finds them). Measured twice in the same run:
 *
 * - baseline: the install transaction alone (installPipelineTable, as migrate ran it before it
 *   built new indexes concurrently): a plain CREATE INDEX and the recount, writers waiting;
 * - `migrate`: the index built concurrently first, then the transaction (the recount).
 *
 * Prints the writer's longest insert and the inserts done while each ran. What writers still
 * wait for under migrate is the install transaction: its DDL and the recount of the counters.
 *
 *   node --import tsx bench/upgrade-pause.ts [rows=1000000]
 */
import pg from "pg";
import { parseConfig } from "../src/config/load-config.ts";
import type { GleanerConfig } from "../src/config/config-types.ts";
import { connectDatabase } from "../src/db/connect-database.ts";
import { installPipelineTable } from "../src/db/install-pipeline-table.ts";
import { migrate } from "../src/db/migrate.ts";
import { createBenchDatabase, fmt } from "./support/bench-database.ts";

const ROWS = Number(process.argv[2] ?? 1_000_000);

function config(url: string): GleanerConfig {
  return parseConfig(
    `
llm:
  backends:
    - { name: fake, base_url: "http://127.0.0.1:9/v1", model: fake }
pipelines:
  items:
    table: items
    inputs: [name]
    outputs: { label: { type: text, description: "A label" } }
    stages:
      - { name: label, kind: llm, backends: [fake], prompt: "Label {{name}}", outputs: [label] }
`,
    { env: { DATABASE_URL: url } },
  );
}

/** Inserts one row at a time until stopped; the longest insert and how many were done. */
function startWriter(url: string) {
  const client = new pg.Client({ connectionString: url });
  let stopped = false;
  let counting = false;
  let longest = 0;
  let inserts = 0;
  const done = (async () => {
    await client.connect();
    while (!stopped) {
      const started = performance.now();
      await client.query("insert into items (name) values ('written during the upgrade')");
      if (!counting) continue;
      longest = Math.max(longest, performance.now() - started);
      inserts++;
    }
    await client.end();
  })();
  return {
    count() {
      counting = true;
    },
    async stop() {
      stopped = true;
      await done;
      return { longest, inserts };
    },
  };
}

async function measure(url: string, upgrade: () => Promise<unknown>) {
  const writer = startWriter(url);
  await new Promise((r) => setTimeout(r, 200));
  writer.count();
  const started = performance.now();
  await upgrade();
  const seconds = (performance.now() - started) / 1000;
  const { longest, inserts } = await writer.stop();
  return { seconds, longest, inserts };
}

async function main() {
  const db = await createBenchDatabase("upgrade_pause");
  const cfg = config(db.url);
  const pipeline = cfg.pipelines[0]!;
  const database = await connectDatabase(cfg, { env: { DATABASE_URL: db.url } });
  // What an upgrade finds: an index of the new version missing, the DDL hash of the old one.
  const asBeforeUpgrade = () =>
    database.pool.query(
      `drop index gleaner_items_due; update gleaner.pipelines set ddl_hash = 'older' where name = 'items'`,
    );
  try {
    await migrate(database, cfg);
    await database.pool.query(
      `insert into items (name) select 'item ' || i from generate_series(1, $1) i`,
      [ROWS],
    );
    await database.pool.query("vacuum analyze items");

    await asBeforeUpgrade();
    const baseline = await measure(db.url, () =>
      database.db.transaction().execute((trx) => installPipelineTable(trx, pipeline, cfg.schema)),
    );
    await asBeforeUpgrade();
    const now = await measure(db.url, () => migrate(database, cfg));

    console.log(
      `table: ${fmt(ROWS)} pending rows; upgrade: one new index over them (the due index)`,
    );
    for (const [label, m] of [
      ["install transaction alone (plain CREATE INDEX; before)", baseline],
      ["migrate (CREATE INDEX CONCURRENTLY first)", now],
    ] as const)
      console.log(
        `${label}: ${fmt(m.seconds, 2)} s; writer's longest insert ${fmt(m.longest, 1)} ms, ${fmt(m.inserts)} inserts meanwhile`,
      );
  } finally {
    await database.close();
    await db.drop();
  }
}

await main();
