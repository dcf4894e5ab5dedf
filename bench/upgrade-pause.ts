/**
 * How long writers and readers of a big table wait while an upgrade adds an index: a writer
 * inserts one row at a time and a reader reads one row at a time by key, on a migrated table of
 * N pending rows, while `migrate` installs a Gleaner version whose DDL adds an index over all of
 * them (simulated: the sweep's due index dropped and the recorded DDL hash changed, as an upgrade
 * finds them). Measured twice in the same run:
 *
 * - baseline: the install transaction as migrate ran it before 2026-12-06: its ALTER TABLE … ADD
 *   COLUMN IF NOT EXISTS first (the table's ACCESS EXCLUSIVE lock, readers out), then a plain
 *   CREATE INDEX and a recount of the counters (a scan of the table);
 * - `migrate`: the index built concurrently first, then the transaction under SHARE ROW
 *   EXCLUSIVE (src/db/lock-table-for-install.ts), readers reading; the counting is unchanged,
 *   so no recount (src/db/counters-are-current.ts): writers wait only for the DDL.
 *
 * Then the same for the first install of a pipeline on a user's existing table of N rows (state
 * columns, the indexes, triggers and a recount), on two copies of the table:
 *
 * - baseline: the install transaction alone, as migrate ran it before 2026-12-06: the ALTER
 *   TABLE (whose status CHECK scans the table) and the index builds, all under ACCESS EXCLUSIVE;
 * - `migrate`: the columns added without a scan, the CHECK validated and the indexes built
 *   concurrently (src/db/add-state-columns-online.ts), then the transaction: writers wait for
 *   its recount only.
 *
 * Prints the writer's longest insert, the reader's longest read and how many of each were done
 * while each ran.
 *
 *   node --import tsx bench/upgrade-pause.ts [rows=1000000]
 */
import { sql } from "kysely";
import pg from "pg";
import { parseConfig } from "../src/config/load-config.ts";
import type { GleanerConfig } from "../src/config/config-types.ts";
import { connectDatabase } from "../src/db/connect-database.ts";
import { installPipelineTable } from "../src/db/install-pipeline-table.ts";
import { addStateColumnsSql, recountSql } from "../src/db/pipeline-ddl.ts";
import { migrate } from "../src/db/migrate.ts";
import { createBenchDatabase, fmt } from "./support/bench-database.ts";

const ROWS = Number(process.argv[2] ?? 1_000_000);

function config(url: string, table = "items"): GleanerConfig {
  return parseConfig(
    `
llm:
  backends:
    - { name: fake, base_url: "http://127.0.0.1:9/v1", model: fake }
pipelines:
  ${table}:
    table: ${table}
    inputs: [name]
    outputs: { label: { type: text, description: "A label" } }
    stages:
      - { name: label, kind: llm, backends: [fake], prompt: "Label {{name}}", outputs: [label] }
`,
    { env: { DATABASE_URL: url } },
  );
}

/** Runs `statement` one at a time until stopped; the longest run and how many were done. */
function startClient(url: string, statement: () => [string, unknown[]]) {
  const client = new pg.Client({ connectionString: url });
  let stopped = false;
  let counting = false;
  let longest = 0;
  let runs = 0;
  const done = (async () => {
    await client.connect();
    while (!stopped) {
      const started = performance.now();
      await client.query(...statement());
      if (!counting) continue;
      longest = Math.max(longest, performance.now() - started);
      runs++;
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
      return { longest, done: runs };
    },
  };
}

async function measure(
  url: string,
  rows: number,
  upgrade: () => Promise<unknown>,
  table = "items",
) {
  const clients = [
    startClient(url, () => [
      `insert into ${table} (name) values ('written during the upgrade')`,
      [],
    ]),
    startClient(url, () => [
      `select name from ${table} where id = $1`,
      [1 + Math.floor(Math.random() * rows)],
    ]),
  ];
  await new Promise((r) => setTimeout(r, 200));
  for (const c of clients) c.count();
  const started = performance.now();
  await upgrade();
  const seconds = (performance.now() - started) / 1000;
  const [writer, reader] = await Promise.all(clients.map((c) => c.stop()));
  return { seconds, writer: writer!, reader: reader! };
}

type Measured = Awaited<ReturnType<typeof measure>>;

function print(rows: [string, Measured][]): void {
  for (const [label, m] of rows)
    console.log(
      `${label}: ${fmt(m.seconds, 2)} s; writer's longest insert ${fmt(m.writer.longest, 1)} ms (${fmt(m.writer.done)} inserts meanwhile), reader's longest read ${fmt(m.reader.longest, 1)} ms (${fmt(m.reader.done)} reads)`,
    );
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
    const baseline = await measure(db.url, ROWS, () =>
      database.db.transaction().execute(async (trx) => {
        await sql.raw(addStateColumnsSql(pipeline)).execute(trx);
        await installPipelineTable(trx, pipeline, cfg.schema);
        for (const statement of recountSql(pipeline, cfg.schema))
          await sql.raw(statement).execute(trx);
      }),
    );
    await asBeforeUpgrade();
    const now = await measure(db.url, ROWS, () => migrate(database, cfg));

    console.log(
      `table: ${fmt(ROWS)} pending rows; upgrade: one new index over them (the due index)`,
    );
    print([
      ["before (ALTER TABLE first, plain CREATE INDEX and a recount in the transaction)", baseline],
      ["migrate (CREATE INDEX CONCURRENTLY first, SHARE ROW EXCLUSIVE, no recount)", now],
    ]);

    // The first install on a user's existing table: two copies, one per way of installing.
    for (const table of ["shops_a", "shops_b"]) {
      await database.pool.query(
        `create table ${table} (id bigint generated by default as identity primary key, name text, label text);
         insert into ${table} (name) select 'shop ' || i from generate_series(1, ${ROWS}) i`,
      );
      await database.pool.query(`vacuum analyze ${table}`);
    }
    const before = config(db.url, "shops_a");
    const firstBaseline = await measure(
      db.url,
      ROWS,
      () =>
        database.db
          .transaction()
          .execute((trx) => installPipelineTable(trx, before.pipelines[0]!, before.schema)),
      "shops_a",
    );
    const firstNow = await measure(
      db.url,
      ROWS,
      () => migrate(database, config(db.url, "shops_b")),
      "shops_b",
    );
    console.log(
      `first install on an existing table of ${fmt(ROWS)} rows (state columns, 5 indexes, triggers, recount)`,
    );
    print([
      [
        "before (the install transaction alone: ALTER TABLE, its CHECK's scan and the index builds in it)",
        firstBaseline,
      ],
      [
        "migrate (columns added without a scan, CHECK validated and indexes built concurrently)",
        firstNow,
      ],
    ]);
  } finally {
    await database.close();
    await db.drop();
  }
}

await main();
