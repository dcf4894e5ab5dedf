import { readdirSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfigError } from "../src/config/config-error.ts";
import type { GleanerConfig } from "../src/config/config-types.ts";
import { parseConfig } from "../src/config/load-config.ts";
import { connectDatabase, type Database } from "../src/db/connect-database.ts";
import { TableContractError } from "../src/db/table-contract-error.ts";
import { migrate } from "../src/db/migrate.ts";
import { STATUSES, createTableSql, stateColumnsSql } from "../src/db/pipeline-ddl.ts";
import { compactRowCounts, readRowCounts } from "../src/sql/row-counts.ts";
import { createTestDatabase, type TestDatabase } from "./support/test-database.ts";

/** Every migration file, in order: each must be applied exactly once. */
const MIGRATION_FILES = readdirSync(new URL("../migrations/", import.meta.url))
  .filter((f) => f.endsWith(".sql"))
  .sort();

/**
 * `migrate` against a real PostgreSQL: Gleaner's schema, graphile-worker's, and the table
 * contract (state columns, indexes, reset and counter triggers) on new and existing tables.
 */

type OutputType = "text" | "integer" | "numeric" | "boolean" | "date" | "jsonb";

interface PipelineSpec {
  table: string;
  key?: string;
  inputs: string[];
  outputs: Record<string, OutputType>;
  prefix?: string;
  on_input_change?: "reprocess" | "ignore";
}

let testDb: TestDatabase;
let database: Database;

/** A config holding exactly these pipelines, each with one LLM stage filling every output. */
function makeConfig(pipelines: Record<string, PipelineSpec>, url = testDb.url): GleanerConfig {
  const raw = {
    llm: { backends: [{ name: "primary", base_url: "http://127.0.0.1:9/v1", model: "fake" }] },
    pipelines: Object.fromEntries(
      Object.entries(pipelines).map(([name, { outputs, ...rest }]) => [
        name,
        {
          ...rest,
          outputs: Object.fromEntries(
            Object.entries(outputs).map(([column, type]) => [
              column,
              { type, description: `the ${column}` },
            ]),
          ),
          stages: [
            {
              name: "fill",
              kind: "llm",
              backends: ["primary"],
              prompt: rest.inputs.map((i) => `{{${i}}}`).join(" "),
              outputs: Object.keys(outputs),
            },
          ],
        },
      ]),
    ),
  };
  // YAML is a superset of JSON.
  return parseConfig(JSON.stringify(raw), { env: { DATABASE_URL: url } });
}

async function q<T = Record<string, unknown>>(text: string, params: unknown[] = []): Promise<T[]> {
  const result = await database.pool.query(text, params);
  return result.rows as T[];
}

async function columnsOf(
  schema: string,
  table: string,
): Promise<
  Record<string, { data_type: string; is_nullable: string; column_default: string | null }>
> {
  const rows = await q<{
    column_name: string;
    data_type: string;
    is_nullable: string;
    column_default: string | null;
  }>(
    `select column_name, data_type, is_nullable, column_default
       from information_schema.columns where table_schema = $1 and table_name = $2`,
    [schema, table],
  );
  return Object.fromEntries(
    rows.map((r) => [
      r.column_name,
      { data_type: r.data_type, is_nullable: r.is_nullable, column_default: r.column_default },
    ]),
  );
}

/** What the counters say per status, without the zero entries and the derived counters. */
async function counterStatuses(pipeline: string, db: Database = database) {
  const counts = await readRowCounts(db.db, "gleaner", pipeline);
  return Object.fromEntries(
    Object.entries(counts).filter(
      ([status, n]) => (STATUSES as readonly string[]).includes(status) && n !== 0,
    ),
  );
}

/** What the table says, by a full count. */
async function actualStatuses(table: string, prefix = "enrichment_") {
  const rows = await q<{ status: string; n: number }>(
    `select ${prefix}status as status, count(*)::int as n from ${table} group by 1`,
  );
  return Object.fromEntries(rows.map((r) => [r.status, r.n]));
}

async function migrateError(config: GleanerConfig): Promise<TableContractError> {
  const error = await migrate(database, config).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(TableContractError);
  return error as TableContractError;
}

beforeAll(async () => {
  testDb = await createTestDatabase("db_migrate");
  database = await connectDatabase(
    makeConfig({ companies: { table: "companies", inputs: ["name"], outputs: { x: "text" } } }),
    { env: { DATABASE_URL: testDb.url }, poolSize: 4 },
  );
});

afterAll(async () => {
  await database?.close();
  // close() leaves the pool open when no query went through Kysely (see the connectDatabase
  // test below); end it here so a filtered run (-t) does not trip the leak check.
  if (database && !database.pool.ended) await database.pool.end();
  await testDb?.drop();
});

describe("connectDatabase", () => {
  it("close() ends its pool even when no query went through Kysely", async () => {
    const config = makeConfig({ c: { table: "c", inputs: ["name"], outputs: { x: "text" } } });
    const opened = await connectDatabase(config, {
      env: { DATABASE_URL: testDb.url },
      poolSize: 1,
    });
    try {
      await opened.pool.query("select 1");
      await opened.close();
      expect(opened.pool.ended).toBe(true);
    } finally {
      if (!opened.pool.ended) await opened.pool.end();
    }
  });
});

describe("migrate", () => {
  const companies = makeConfigLater(() =>
    makeConfig({
      companies: {
        table: "public.companies",
        inputs: ["name", "domain"],
        outputs: { industry: "text", employees: "integer", founded: "integer" },
      },
    }),
  );

  it("creates Gleaner's schema, graphile-worker's and the pipeline table on a fresh database", async () => {
    const report = await migrate(database, companies());
    expect(report.applied).toEqual(MIGRATION_FILES);
    expect(report.pipelines).toEqual([
      { name: "companies", table: "public.companies", outcome: "created" },
    ]);

    const migrations = await q<{ id: number; name: string }>(
      "select id, name from gleaner.migrations order by id",
    );
    expect(migrations).toEqual(
      MIGRATION_FILES.map((name) => ({ id: Number(name.slice(0, 6)), name })),
    );
    const schemas = await q<{ schema_name: string }>(
      "select schema_name from information_schema.schemata where schema_name in ('gleaner', 'graphile_worker') order by 1",
    );
    expect(schemas.map((s) => s.schema_name)).toEqual(["gleaner", "graphile_worker"]);
    const [jobsTable] = await q<{ t: string | null }>(
      "select to_regclass('graphile_worker._private_jobs')::text as t",
    );
    expect(jobsTable?.t).not.toBeNull();

    const cols = await columnsOf("public", "companies");
    expect(cols.id?.data_type).toBe("bigint");
    expect(cols.name?.data_type).toBe("text");
    expect(cols.domain?.data_type).toBe("text");
    expect(cols.industry?.data_type).toBe("text");
    expect(cols.employees?.data_type).toBe("integer");
    expect(cols.founded?.data_type).toBe("integer");
    expect(cols.enrichment_status).toEqual({
      data_type: "text",
      is_nullable: "NO",
      column_default: "'pending'::text",
    });
    expect(cols.enrichment_confidence?.data_type).toBe("real");
    expect(cols.enrichment_state?.data_type).toBe("jsonb");
    expect(cols.enrichment_attempts?.data_type).toBe("integer");
    expect(cols.enrichment_next_at?.data_type).toBe("timestamp with time zone");
    expect(cols.enrichment_claim?.data_type).toBe("uuid");
    expect(cols.enriched_at?.data_type).toBe("timestamp with time zone");

    const indexes = await q<{ indexname: string }>(
      "select indexname from pg_indexes where schemaname = 'public' and tablename = 'companies' and indexname like 'gleaner\\_companies\\_%' order by 1",
    );
    expect(indexes.map((i) => i.indexname)).toEqual([
      "gleaner_companies_due",
      "gleaner_companies_failures",
      "gleaner_companies_pending",
      "gleaner_companies_reviewed",
      "gleaner_companies_review",
    ]);
    const [installed] = await q(
      "select name, table_schema, table_name, prefix, key_column, key_type from gleaner.pipelines",
    );
    expect(installed).toEqual({
      name: "companies",
      table_schema: "public",
      table_name: "companies",
      prefix: "enrichment_",
      key_column: "id",
      key_type: "bigint",
    });
  });

  it("reports unchanged and applies nothing the second time", async () => {
    const report = await migrate(database, companies());
    expect(report.applied).toEqual([]);
    expect(report.pipelines).toEqual([
      { name: "companies", table: "public.companies", outcome: "unchanged" },
    ]);
    const [m] = await q<{ n: number }>("select count(*)::int as n from gleaner.migrations");
    expect(m?.n).toBe(MIGRATION_FILES.length);
  });
});

describe("an existing table", () => {
  const leads = makeConfigLater(() =>
    makeConfig({
      leads: {
        table: "leads",
        key: "lead_id",
        inputs: ["full_name", "website"],
        outputs: { industry: "text", employees: "integer" },
      },
    }),
  );

  it("keeps its 1000 rows, which become pending and due, and counts them", async () => {
    await q(`
      create table leads (
        lead_id bigint primary key,
        full_name text not null,
        website text,
        notes text,
        created_at timestamptz not null default '2020-01-01',
        industry varchar(100)
      );
      insert into leads (lead_id, full_name, website, notes)
        select i, 'lead ' || i, 'lead' || i || '.example', 'note ' || i
        from generate_series(1, 1000) i;`);

    const report = await migrate(database, leads());
    expect(report.pipelines).toEqual([
      { name: "leads", table: "public.leads", outcome: "updated" },
    ]);

    const [summary] = await q<Record<string, number | boolean>>(`
      select count(*)::int as n,
             count(*) filter (where notes = 'note ' || lead_id and full_name = 'lead ' || lead_id
                               and created_at = '2020-01-01')::int as intact,
             count(*) filter (where enrichment_status = 'pending')::int as pending,
             count(*) filter (where enrichment_next_at <= now())::int as due,
             count(*) filter (where enrichment_attempts = 0)::int as fresh,
             count(*) filter (where enrichment_claim is null and enriched_at is null)::int as unclaimed
      from leads`);
    expect(summary).toEqual({
      n: 1000,
      intact: 1000,
      pending: 1000,
      due: 1000,
      fresh: 1000,
      unclaimed: 1000,
    });

    const counts = await readRowCounts(database.db, "gleaner", "leads");
    expect(counts.pending).toBe(1000);
    expect(await counterStatuses("leads")).toEqual({ pending: 1000 });
    expect(counts.complete ?? 0).toBe(0);

    // The varchar output column is kept as it is; the missing one is added with its type.
    const cols = await columnsOf("public", "leads");
    expect(cols.industry?.data_type).toBe("character varying");
    expect(cols.employees?.data_type).toBe("integer");
  });

  it("rejects an output column of an incompatible type, naming it and both types", async () => {
    await q("create table typed (id integer primary key, name text, employees text)");
    const error = await migrateError(
      makeConfig({
        typed: { table: "typed", inputs: ["name"], outputs: { employees: "integer" } },
      }),
    );
    expect(error.column).toBe("employees");
    expect(error.message).toMatch(/employees/);
    expect(error.message).toMatch(/\btext\b/);
    expect(error.message).toMatch(/\binteger\b/);
    // Nothing of the contract was left behind.
    expect(Object.keys(await columnsOf("public", "typed")).sort()).toEqual([
      "employees",
      "id",
      "name",
    ]);
  });

  it("rejects a table missing an input column, naming it", async () => {
    await q("create table no_input (id integer primary key, name text)");
    const error = await migrateError(
      makeConfig({
        no_input: { table: "no_input", inputs: ["name", "domain"], outputs: { industry: "text" } },
      }),
    );
    expect(error.column).toBe("domain");
    expect(error.message).toMatch(/"domain"/);
  });

  it("rejects a key column without a unique index and says to add one", async () => {
    await q("create table no_key (id integer, name text)");
    const error = await migrateError(
      makeConfig({ no_key: { table: "no_key", inputs: ["name"], outputs: { industry: "text" } } }),
    );
    expect(error.column).toBe("id");
    expect(error.message).toMatch(/no unique index/);
    expect(error.message).toMatch(/add a primary key or unique index/);
  });
  it("rejects a key column whose only unique index is partial", async () => {
    // A partial index leaves keys outside its predicate free to repeat.
    await q("create table partial_key (id integer, name text)");
    await q("create unique index partial_key_id on partial_key (id) where id > 100");
    const error = await migrateError(
      makeConfig({
        partial_key: { table: "partial_key", inputs: ["name"], outputs: { industry: "text" } },
      }),
    );
    expect(error.column).toBe("id");
    expect(error.message).toMatch(/no unique index/);
  });
});

describe("the row counters", () => {
  it("stay exact under inserts, updates, deletes, compaction and truncate", async () => {
    await migrate(
      database,
      makeConfig({
        counted: {
          table: "counted",
          inputs: ["name"],
          outputs: { industry: "text", employees: "integer" },
        },
      }),
    );
    const check = async () => {
      expect(await counterStatuses("counted")).toEqual(await actualStatuses("counted"));
      const [complete] = await q<{ n: number }>(
        `select count(*)::int as n from counted
          where enrichment_status = 'done' and industry is not null and employees is not null`,
      );
      const counts = await readRowCounts(database.db, "gleaner", "counted");
      expect(counts.complete ?? 0).toBe(complete?.n);
      // The derived counters behind /metrics: fill per column and low confidence (min 0.7).
      const [actual] = await q<{ industry: number; employees: number; low: number }>(
        `select count(industry)::int as industry, count(employees)::int as employees,
           count(*) filter (where enrichment_status = 'done' and enrichment_confidence < 0.7)::int as low
         from counted`,
      );
      expect(counts["filled:industry"] ?? 0).toBe(actual?.industry);
      expect(counts["filled:employees"] ?? 0).toBe(actual?.employees);
      expect(counts.low_confidence ?? 0).toBe(actual?.low);
    };

    await q("insert into counted (name) select 'c' || i from generate_series(1, 50) i");
    await check();
    expect(await counterStatuses("counted")).toEqual({ pending: 50 });
    await q(`update counted set enrichment_status = 'done', industry = 'x', employees = 1,
               enrichment_confidence = 0.9, enrichment_next_at = null where id <= 12`);
    await q(`update counted set enrichment_status = 'done', industry = 'y',
               enrichment_next_at = null where id between 13 and 15`);
    await q("update counted set enrichment_status = 'failed' where id between 16 and 20");
    await q("update counted set enrichment_status = 'exhausted' where id = 21");
    await q("update counted set enrichment_status = 'queued' where id between 22 and 24");
    await check();
    await q("update counted set name = name || '!' where id between 40 and 45");
    await q("insert into counted (name) values ('late1'), ('late2')");
    await q("delete from counted where id in (1, 2, 3, 16, 17, 22, 30, 31, 32, 51)");
    await check();
    expect(await counterStatuses("counted")).toEqual({
      done: 12,
      failed: 3,
      exhausted: 1,
      queued: 2,
      pending: 24,
    });
    // Clearing an output resets the row through the trigger: counted as pending again.
    await q("update counted set industry = null where id in (4, 5)");
    await check();

    await compactRowCounts(database.db, "gleaner", "counted");
    await check();
    const [rows] = await q<{ n: number }>(
      "select count(*)::int as n from gleaner.row_counts where pipeline = 'counted'",
    );
    // One row per non-zero counter: statuses, complete, low_confidence, filled:<column>.
    const counters = await readRowCounts(database.db, "gleaner", "counted");
    expect(rows?.n).toBe(Object.values(counters).filter((n) => n !== 0).length);

    await q("truncate counted");
    await check();
    expect(await counterStatuses("counted")).toEqual({});
    await q("insert into counted (name) values ('again')");
    await check();
    expect(await counterStatuses("counted")).toEqual({ pending: 1 });
  });
});

describe("the reset trigger", () => {
  type StateRow = {
    industry: string | null;
    employees: number | null;
    enrichment_status: string;
    enrichment_confidence: number | null;
    enrichment_attempts: number;
    enrichment_claim: string | null;
    enrichment_next_at: Date | null;
    due: boolean | null;
    enriched_at: Date | null;
    enrichment_state: { reset?: { reason: string }; stages?: Record<string, unknown> } | null;
  };
  const read = async (table: string, id: number) =>
    (
      await q<StateRow>(
        `select industry, employees, enrichment_status, enrichment_confidence, enrichment_attempts,
                enrichment_claim, enrichment_next_at, enrichment_next_at <= now() as due,
                enriched_at, enrichment_state
           from ${table} where id = $1`,
        [id],
      )
    )[0] as StateRow;
  const markDone = (table: string, id: number) =>
    q(
      `update ${table} set industry = 'x', employees = 5, enrichment_status = 'done',
          enrichment_confidence = 0.9, enrichment_next_at = null, enrichment_attempts = 3,
          enrichment_claim = gen_random_uuid(), enriched_at = now()
        where id = $1`,
      [id],
    );

  beforeAll(async () => {
    await migrate(
      database,
      makeConfig({
        resets: {
          table: "resets",
          inputs: ["name", "domain"],
          outputs: { industry: "text", employees: "integer" },
        },
        ignoring: {
          table: "ignoring",
          inputs: ["name", "domain"],
          outputs: { industry: "text", employees: "integer" },
          on_input_change: "ignore",
        },
      }),
    );
    await q("alter table resets add column notes text");
    await q("alter table ignoring add column notes text");
    for (const table of ["resets", "ignoring"])
      await q(
        `insert into ${table} (name, domain) select 'n' || i, 'd' || i from generate_series(1, 9) i`,
      );
  });

  it("leaves a row done by hand as it is", async () => {
    await markDone("resets", 1);
    expect(await read("resets", 1)).toMatchObject({
      industry: "x",
      enrichment_status: "done",
      enrichment_next_at: null,
      enrichment_attempts: 3,
    });
  });

  it("makes a done row pending when an output is set to NULL", async () => {
    await markDone("resets", 1);
    await q("update resets set industry = null where id = 1");
    const row = await read("resets", 1);
    expect(row).toMatchObject({
      industry: null,
      employees: 5, // only what the user cleared is cleared
      enrichment_status: "pending",
      enrichment_attempts: 0,
      enrichment_claim: null,
      due: true,
    });
    expect(row.enrichment_next_at).not.toBeNull();
    expect(row.enrichment_state?.reset?.reason).toBe("output_cleared");
  });

  it("makes a done row pending when its confidence is set to NULL", async () => {
    await markDone("resets", 2);
    await q("update resets set enrichment_confidence = null where id = 2");
    expect(await read("resets", 2)).toMatchObject({
      enrichment_status: "pending",
      enrichment_attempts: 0,
      due: true,
    });
  });

  it("clears outputs and confidence when an input changes (on_input_change: reprocess)", async () => {
    await markDone("resets", 3);
    await q("update resets set domain = 'elsewhere.example' where id = 3");
    const row = await read("resets", 3);
    expect(row).toMatchObject({
      industry: null,
      employees: null,
      enrichment_confidence: null,
      enriched_at: null,
      enrichment_status: "pending",
      enrichment_attempts: 0,
      enrichment_claim: null,
      due: true,
    });
    expect(row.enrichment_state?.reset?.reason).toBe("input_changed");
  });

  it("does not reset when an input is written with the same value", async () => {
    await markDone("resets", 4);
    await q("update resets set name = name where id = 4");
    expect(await read("resets", 4)).toMatchObject({ enrichment_status: "done", industry: "x" });
  });

  it("does not reset when an unrelated column changes", async () => {
    await markDone("resets", 5);
    await q("update resets set notes = 'called them' where id = 5");
    expect(await read("resets", 5)).toMatchObject({
      enrichment_status: "done",
      industry: "x",
      employees: 5,
      enrichment_confidence: expect.closeTo(0.9, 5) as number,
      enrichment_next_at: null,
      enrichment_attempts: 3,
    });
  });

  /** A row that never got a value: its outputs and confidence are NULL already. */
  const markExhausted = (table: string, id: number) =>
    q(
      `update ${table} set enrichment_status = 'exhausted', enrichment_attempts = 5,
          enrichment_next_at = null, enrichment_claim = null,
          enrichment_state = '{"stages": {"fill": {"status": "error"}}}'
        where id = $1`,
      [id],
    );

  it("makes an exhausted row that never got a value pending when a user sets its status", async () => {
    await markExhausted("resets", 6);
    await q("update resets set enrichment_status = 'pending' where id = 6");
    const row = await read("resets", 6);
    expect(row).toMatchObject({ enrichment_status: "pending", enrichment_attempts: 0, due: true });
    expect(row.enrichment_state?.reset?.reason).toBe("status_reset");
    // The stage that fills outputs answers again; research stages' records would stay.
    expect(row.enrichment_state?.stages).toEqual({});
  });

  it("makes an exhausted row pending when a user sets its attempts to 0", async () => {
    await markExhausted("resets", 7);
    await q("update resets set enrichment_attempts = 0 where id = 7");
    const row = await read("resets", 7);
    expect(row).toMatchObject({ enrichment_status: "pending", enrichment_attempts: 0, due: true });
    expect(row.enrichment_state?.reset?.reason).toBe("attempts_reset");
  });

  it("leaves Gleaner's own hand-back alone: a claimed row made pending keeps its stages", async () => {
    await q(
      `update resets set enrichment_status = 'running', enrichment_attempts = 1,
          enrichment_claim = gen_random_uuid(), enrichment_next_at = now() + interval '5 minutes',
          enrichment_state = '{"stages": {"profile": {"status": "ok"}}}'
        where id = 8`,
    );
    await q(
      `update resets set enrichment_status = 'pending', enrichment_claim = null,
          enrichment_attempts = 0, enrichment_next_at = now() where id = 8`,
    );
    const row = await read("resets", 8);
    expect(row.enrichment_state).toEqual({ stages: { profile: { status: "ok" } } });
  });

  it("ignores input changes with on_input_change: ignore, but not a cleared output", async () => {
    await markDone("ignoring", 1);
    await q("update ignoring set name = 'renamed', domain = 'moved.example' where id = 1");
    expect(await read("ignoring", 1)).toMatchObject({
      enrichment_status: "done",
      industry: "x",
      employees: 5,
      enrichment_next_at: null,
    });
    await q("update ignoring set employees = null where id = 1");
    expect(await read("ignoring", 1)).toMatchObject({
      enrichment_status: "pending",
      industry: "x",
      enrichment_attempts: 0,
      due: true,
    });
  });
});

describe("names", () => {
  it("rejects a hostile table name in the config", () => {
    let error: unknown;
    try {
      makeConfig({
        hostile: { table: "companies; drop table x", inputs: ["name"], outputs: { a: "text" } },
      });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).path).toBe("pipelines.hostile.table");
  });

  it("rejects hostile keys, inputs, outputs and prefixes in the config", () => {
    const base = { table: "t", inputs: ["name"], outputs: { a: "text" as const } };
    for (const spec of [
      { ...base, key: 'id"; drop table t; --' },
      { ...base, inputs: ["name); drop table t; --"] },
      { ...base, outputs: { "a text); drop table t; --": "text" as const } },
      { ...base, prefix: "x'; drop table t; --" },
      { ...base, table: 'crm."Leads"' },
    ]) {
      expect(() => makeConfig({ hostile: spec })).toThrow(ConfigError);
    }
  });

  it("refuses unsafe identifiers in the DDL even when the config check is bypassed", () => {
    const [pipeline] = makeConfig({
      fine: { table: "fine", inputs: ["name"], outputs: { a: "text" } },
    }).pipelines;
    const hostile = { ...pipeline!, table: { schema: "public", name: "x; drop table y" } };
    expect(() => createTableSql(hostile)).toThrow(/unsafe SQL identifier/);
    expect(() => stateColumnsSql({ ...pipeline!, prefix: "p; drop table y; --" })).toThrow(
      /unsafe SQL identifier/,
    );
  });

  it("installs a prefixed pipeline on a schema-qualified table, creating the schema", async () => {
    const report = await migrate(
      database,
      makeConfig({
        crm_leads: {
          table: "crm.leads",
          inputs: ["name"],
          outputs: { segment: "text" },
          prefix: "e2_",
        },
      }),
    );
    expect(report.pipelines).toEqual([
      { name: "crm_leads", table: "crm.leads", outcome: "created" },
    ]);
    const cols = await columnsOf("crm", "leads");
    expect(Object.keys(cols).sort()).toEqual(
      [
        "id",
        "name",
        "segment",
        "e2_status",
        "e2_confidence",
        "e2_state",
        "e2_attempts",
        "e2_next_at",
        "e2_claim",
        "e2_enriched_at",
      ].sort(),
    );
    const indexes = await q<{ indexname: string }>(
      "select indexname from pg_indexes where schemaname = 'crm' and tablename = 'leads' and indexname like 'gleaner\\_crm\\_leads\\_%' order by 1",
    );
    expect(indexes.map((i) => i.indexname)).toEqual([
      "gleaner_crm_leads_due",
      "gleaner_crm_leads_failures",
      "gleaner_crm_leads_pending",
      "gleaner_crm_leads_reviewed",
      "gleaner_crm_leads_review",
    ]);
    await q("insert into crm.leads (name) values ('a'), ('b'), ('c')");
    expect(await counterStatuses("crm_leads")).toEqual({ pending: 3 });
    await q(
      "update crm.leads set segment = 's', e2_status = 'done', e2_next_at = null where name = 'a'",
    );
    await q("update crm.leads set segment = null where name = 'a'");
    const [row] = await q("select e2_status, e2_attempts from crm.leads where name = 'a'");
    expect(row).toEqual({ e2_status: "pending", e2_attempts: 0 });
    expect(await counterStatuses("crm_leads")).toEqual(await actualStatuses("crm.leads", "e2_"));
  });
});

describe("concurrency", () => {
  it("lets two migrations run at once on a fresh database, applying each migration once", async () => {
    const fresh = await createTestDatabase("db_migrate_race");
    const opened: Database[] = [];
    try {
      const config = makeConfig(
        { raced: { table: "raced", inputs: ["name"], outputs: { industry: "text" } } },
        fresh.url,
      );
      for (let i = 0; i < 2; i++)
        opened.push(
          await connectDatabase(config, { env: { DATABASE_URL: fresh.url }, poolSize: 2 }),
        );
      const [a, b] = opened as [Database, Database];
      const results = await Promise.allSettled([migrate(a, config), migrate(b, config)]);
      for (const r of results) expect(r).toMatchObject({ status: "fulfilled" });
      const reports = results.map((r) => (r.status === "fulfilled" ? r.value : undefined));
      // Each migration applied by exactly one of the two.
      expect(reports.flatMap((r) => r?.applied ?? []).sort()).toEqual(MIGRATION_FILES);
      expect(reports.map((r) => r?.pipelines[0]?.outcome).sort()).toEqual(["created", "unchanged"]);

      const migrations = await a.pool.query("select id from gleaner.migrations order by id");
      expect(migrations.rows).toEqual(MIGRATION_FILES.map((f) => ({ id: Number(f.slice(0, 6)) })));
      const installed = await a.pool.query("select name from gleaner.pipelines");
      expect(installed.rows).toEqual([{ name: "raced" }]);
      // The triggers exist once: a statement counts once.
      await a.pool.query("insert into raced (name) select 'r' || i from generate_series(1, 7) i");
      expect(await counterStatuses("raced", a)).toEqual({ pending: 7 });
    } finally {
      for (const d of opened) await d.close();
      await fresh.drop();
    }
  });
});

describe("two pipelines on one table", () => {
  it("get separate state columns and independent counters", async () => {
    const report = await migrate(
      database,
      makeConfig({
        shared_main: { table: "shared", inputs: ["name"], outputs: { industry: "text" } },
        shared_audit: {
          table: "shared",
          inputs: ["name"],
          outputs: { risk: "integer" },
          prefix: "audit_",
        },
      }),
    );
    expect(report.pipelines.map((p) => p.outcome)).toEqual(["created", "updated"]);
    const cols = await columnsOf("public", "shared");
    for (const name of [
      "enrichment_status",
      "enrichment_confidence",
      "enrichment_state",
      "enrichment_attempts",
      "enrichment_next_at",
      "enrichment_claim",
      "enriched_at",
      "audit_status",
      "audit_confidence",
      "audit_state",
      "audit_attempts",
      "audit_next_at",
      "audit_claim",
      "audit_enriched_at",
      "industry",
      "risk",
    ])
      expect(cols[name], name).toBeDefined();

    await q("insert into shared (name) select 's' || i from generate_series(1, 20) i");
    expect(await counterStatuses("shared_main")).toEqual({ pending: 20 });
    expect(await counterStatuses("shared_audit")).toEqual({ pending: 20 });

    await q(`update shared set industry = 'x', enrichment_status = 'done', enrichment_next_at = null
              where id <= 5`);
    await q("update shared set audit_status = 'failed' where id between 3 and 4");
    expect(await counterStatuses("shared_main")).toEqual({ done: 5, pending: 15 });
    expect(await counterStatuses("shared_audit")).toEqual({ failed: 2, pending: 18 });
    expect(await counterStatuses("shared_main")).toEqual(await actualStatuses("shared"));
    expect(await counterStatuses("shared_audit")).toEqual(await actualStatuses("shared", "audit_"));

    // Clearing one pipeline's output resets that pipeline only.
    await q("update shared set industry = null where id = 4");
    const [row] = await q("select enrichment_status, audit_status from shared where id = 4");
    expect(row).toEqual({ enrichment_status: "pending", audit_status: "failed" });
    expect(await counterStatuses("shared_main")).toEqual({ done: 4, pending: 16 });
    expect(await counterStatuses("shared_audit")).toEqual({ failed: 2, pending: 18 });

    await q("delete from shared where id in (1, 3)");
    expect(await counterStatuses("shared_main")).toEqual({ done: 2, pending: 16 });
    expect(await counterStatuses("shared_audit")).toEqual({ failed: 1, pending: 17 });
  });
});

/** Config built on first use, after beforeAll has created the database. */
function makeConfigLater(build: () => GleanerConfig): () => GleanerConfig {
  let config: GleanerConfig | undefined;
  return () => (config ??= build());
}
