import pg from "pg";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { GleanerConfig } from "../src/config/config-types.ts";
import { parseConfig } from "../src/config/load-config.ts";
import { addStateColumnsOnline } from "../src/db/add-state-columns-online.ts";
import { connectDatabase, type Database } from "../src/db/connect-database.ts";
import { migrate } from "../src/db/migrate.ts";
import { TableContractError } from "../src/db/table-contract-error.ts";
import { waitFor } from "./support/gleaner-process.ts";
import { createTestDatabase, type TestDatabase } from "./support/test-database.ts";

/**
 * The first install of a pipeline on a user's existing table, on a real PostgreSQL: the state
 * columns are added without a scan under the table's exclusive lock, and the indexes are then
 * built concurrently, so the table's readers and writers are not stopped for the install.
 */

let testDb: TestDatabase;
let database: Database;

function config(): GleanerConfig {
  return parseConfig(
    `
llm:
  backends:
    - { name: primary, base_url: "http://127.0.0.1:9/v1", model: fake }
pipelines:
  shops:
    table: public.shops
    key: shop_id
    inputs: [name]
    outputs: { label: { type: text, description: "A label" }, score: { type: integer, description: "A score" } }
    stages:
      - { name: fill, kind: llm, backends: [primary], prompt: "{{name}}", outputs: [label, score] }
`,
    { env: { DATABASE_URL: testDb.url } },
  );
}

async function q<T = Record<string, unknown>>(text: string, params: unknown[] = []): Promise<T[]> {
  return (await database.pool.query(text, params)).rows as T[];
}

async function columns(): Promise<string[]> {
  return (
    await q<{ name: string }>(
      `select attname as name from pg_attribute
         where attrelid = 'public.shops'::regclass and attnum > 0 and not attisdropped order by attnum`,
    )
  ).map((r) => r.name);
}

beforeAll(async () => {
  testDb = await createTestDatabase("state_columns_online");
  database = await connectDatabase(config(), { env: { DATABASE_URL: testDb.url }, poolSize: 4 });
});

beforeEach(async () => {
  await q("drop table if exists public.shops");
  // Not installed yet, as a first install finds it (the schema exists from the second test on).
  await q(
    "do $$ begin if to_regclass('gleaner.pipelines') is not null then delete from gleaner.pipelines where name = 'shops'; end if; end $$",
  );
  await q(
    "create table public.shops (shop_id bigint primary key, name text, label text); insert into public.shops select i, 'shop ' || i from generate_series(1, 2000) i",
  );
});

afterAll(async () => {
  await database?.close();
  await testDb?.drop();
});

describe("addStateColumnsOnline", () => {
  it("adds the state columns and missing outputs with a validated status check, once", async () => {
    expect(await addStateColumnsOnline(database.db, config().pipelines[0]!)).toBe(true);
    expect(await columns()).toEqual([
      "shop_id",
      "name",
      "label",
      "enrichment_status",
      "enrichment_confidence",
      "enrichment_state",
      "enrichment_attempts",
      "enrichment_next_at",
      "enrichment_claim",
      "enriched_at",
      "score",
    ]);
    const [check] = await q<{ valid: boolean }>(
      "select convalidated as valid from pg_constraint where conname = 'gleaner_shops_status_check'",
    );
    expect(check?.valid).toBe(true);
    const [row] = await q<{ status: string; due: boolean }>(
      "select enrichment_status as status, enrichment_next_at <= now() as due from shops where shop_id = 1",
    );
    expect(row).toEqual({ status: "pending", due: true });
    await expect(
      q("update shops set enrichment_status = 'bogus' where shop_id = 1"),
    ).rejects.toThrow(/gleaner_shops_status_check/);
    expect(await addStateColumnsOnline(database.db, config().pipelines[0]!)).toBe(false);
  });

  it("builds the first install's indexes concurrently: a writer is not held while they build", async () => {
    const holder = new pg.Client({ connectionString: testDb.url });
    const writer = new pg.Client({ connectionString: testDb.url });
    await holder.connect();
    await writer.connect();
    try {
      // An open transaction with a snapshot, which touched no table: a concurrent index build
      // waits for it before it can finish, which makes the build observable; a plain CREATE
      // INDEX would not wait, and the ALTER TABLE adding the columns does not either.
      await holder.query("begin isolation level repeatable read");
      await holder.query("select 1");
      const migrating = migrate(database, config());
      const seen = await waitFor("a concurrent index build", async () => {
        const [row] = await q<{ command: string }>(
          "select command from pg_stat_progress_create_index where relid = 'public.shops'::regclass",
        );
        return row;
      });
      expect(seen.command).toBe("CREATE INDEX CONCURRENTLY");
      await writer.query("set lock_timeout = '5s'");
      await writer.query("insert into shops (shop_id, name) values (100002, 'not held')");
      await holder.query("commit");
      await migrating;
    } finally {
      await holder.end();
      await writer.end();
    }
    const [counted] = await q<{ n: string }>(
      "select sum(n)::text as n from gleaner.row_counts where pipeline = 'shops' and status = 'pending'",
    );
    expect(counted?.n).toBe("2001");
  });

  it("leaves a table the install refuses untouched", async () => {
    await q("alter table shops drop constraint shops_pkey");
    await expect(migrate(database, config())).rejects.toThrow(TableContractError);
    expect(await columns()).toEqual(["shop_id", "name", "label"]);
  });

  it("validates a check a killed migrator left not valid, and names the column when rows break it", async () => {
    const pipeline = config().pipelines[0]!;
    await addStateColumnsOnline(database.db, pipeline);
    await q(
      "alter table shops drop constraint gleaner_shops_status_check; update shops set enrichment_status = 'mine' where shop_id = 7",
    );
    await q(
      `alter table shops add constraint gleaner_shops_status_check
         check (enrichment_status in ('pending', 'queued', 'running', 'done', 'failed', 'exhausted')) not valid`,
    );
    await expect(addStateColumnsOnline(database.db, pipeline)).rejects.toThrow(
      /shops\.enrichment_status holds values other than Gleaner's statuses/,
    );
    await q("update shops set enrichment_status = 'pending' where shop_id = 7");
    await migrate(database, config());
    const [check] = await q<{ valid: boolean }>(
      "select convalidated as valid from pg_constraint where conname = 'gleaner_shops_status_check'",
    );
    expect(check?.valid).toBe(true);
  });
});
