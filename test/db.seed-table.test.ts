import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { GleanerConfig } from "../src/config/config-types.ts";
import { parseConfig } from "../src/config/load-config.ts";
import { connectDatabase, type Database } from "../src/db/connect-database.ts";
import { migrate } from "../src/db/migrate.ts";
import { readRowCounts } from "../src/sql/row-counts.ts";
import { createTestDatabase, type TestDatabase } from "./support/test-database.ts";

/**
 * A pipeline's `seed` CSV loaded by `migrate` on real PostgreSQL: once, when the table is
 * created, in the same transaction; empty fields NULL; only the key and inputs accepted; text
 * (accents, quotes, commas) kept byte for byte.
 */

let testDb: TestDatabase;
let database: Database;
const dir = mkdtempSync(join(tmpdir(), "gleaner-seed-test-"));

/** A config with one pipeline on `table`, seeded from `seed` (a path relative to the config). */
function makeConfig(name: string, table: string, seed: string | undefined): GleanerConfig {
  const raw = {
    llm: { backends: [{ name: "primary", base_url: "http://127.0.0.1:9/v1", model: "fake" }] },
    pipelines: {
      [name]: {
        table,
        inputs: ["name", "website"],
        outputs: { city: { type: "text", description: "the city" } },
        stages: [
          {
            name: "fill",
            kind: "llm",
            backends: ["primary"],
            prompt: "{{name}}",
            outputs: ["city"],
          },
        ],
        ...(seed === undefined ? {} : { seed }),
      },
    },
  };
  return parseConfig(JSON.stringify(raw), {
    file: join(dir, "gleaner.yaml"),
    env: { DATABASE_URL: testDb.url },
  });
}

function writeCsv(name: string, text: string): string {
  writeFileSync(join(dir, name), text);
  return name;
}

async function q<T = Record<string, unknown>>(text: string, params: unknown[] = []): Promise<T[]> {
  const result = await database.pool.query(text, params);
  return result.rows as T[];
}

async function tableExists(table: string): Promise<boolean> {
  const [row] = await q<{ found: string | null }>("select to_regclass($1)::text as found", [table]);
  return row?.found !== null && row?.found !== undefined;
}

beforeAll(async () => {
  testDb = await createTestDatabase("db_seed_table");
  database = await connectDatabase(makeConfig("boot", "boot", undefined), {
    env: { DATABASE_URL: testDb.url },
    poolSize: 4,
  });
});

afterAll(async () => {
  await database?.close();
  if (database && !database.pool.ended) await database.pool.end();
  await testDb?.drop();
  rmSync(dir, { recursive: true, force: true });
});

describe("migrate with a seed CSV", () => {
  it("loads the rows once when it creates the table, as pending rows, and not on a later migrate", async () => {
    const seed = writeCsv("orgs.csv", "name,website\nAcme,acme.example\nGlobex,globex.example\n");
    const config = makeConfig("orgs", "orgs", seed);
    const first = await migrate(database, config);
    expect(first.pipelines).toEqual([
      { name: "orgs", table: "public.orgs", outcome: "created", seeded: 2 },
    ]);
    const rows = await q<{ id: number; name: string; website: string; enrichment_status: string }>(
      "select id, name, website, enrichment_status from orgs order by id",
    );
    expect(rows).toEqual([
      { id: 1, name: "Acme", website: "acme.example", enrichment_status: "pending" },
      { id: 2, name: "Globex", website: "globex.example", enrichment_status: "pending" },
    ]);
    // The count triggers saw the seeded rows: status reads them without a scan.
    const counts = await readRowCounts(database.db, "gleaner", "orgs");
    expect(counts.pending).toBe(2);
    expect(counts.complete ?? 0).toBe(0);

    // The CSV grew, but the table exists: nothing is loaded again.
    writeCsv(
      "orgs.csv",
      "name,website\nAcme,acme.example\nGlobex,globex.example\nInitech,initech.example\n",
    );
    const second = await migrate(database, config);
    expect(second.pipelines).toEqual([
      { name: "orgs", table: "public.orgs", outcome: "unchanged" },
    ]);
    expect(await q("select name from orgs order by id")).toEqual([
      { name: "Acme" },
      { name: "Globex" },
    ]);
  });

  it("does not seed a table that already existed before the first migrate", async () => {
    await q(
      "create table existing_orgs (id bigint primary key, name text, website text, city text)",
    );
    await q("insert into existing_orgs values (7, 'Mine', null, null)");
    const seed = writeCsv("existing.csv", "name,website\nAcme,acme.example\n");
    const report = await migrate(database, makeConfig("existing", "existing_orgs", seed));
    expect(report.pipelines).toEqual([
      { name: "existing", table: "public.existing_orgs", outcome: "updated" },
    ]);
    expect(await q("select id, name from existing_orgs")).toEqual([{ id: 7, name: "Mine" }]);
  });

  it("stores empty fields as NULL, not as empty strings", async () => {
    const seed = writeCsv(
      "empty.csv",
      'name,website\nAcme,\n"",globex.example\nInitech,initech.example\n',
    );
    await migrate(database, makeConfig("empty", "empty_orgs", seed));
    expect(await q("select name, website from empty_orgs order by id")).toEqual([
      { name: "Acme", website: null },
      { name: null, website: "globex.example" },
      { name: "Initech", website: "initech.example" },
    ]);
  });

  it("keeps keys given in the CSV, and a row inserted afterwards gets a fresh key", async () => {
    const seed = writeCsv("keyed.csv", "id,name\n1,Acme\n2,Globex\n");
    const report = await migrate(database, makeConfig("keyed", "keyed_orgs", seed));
    expect(report.pipelines[0]?.seeded).toBe(2);
    expect(await q("select id, name, website from keyed_orgs order by id")).toEqual([
      { id: 1, name: "Acme", website: null },
      { id: 2, name: "Globex", website: null },
    ]);
    // A plain INSERT relies on the key's identity sequence, which must start past the seed.
    const [inserted] = await q<{ id: number }>(
      "insert into keyed_orgs (name) values ('Initech') returning id",
    );
    expect(inserted?.id).toBe(3);
  });

  it("refuses a column that is neither the key nor an input, naming the file and the column, and creates no table", async () => {
    const seed = writeCsv("extra.csv", "name,website,city\nAcme,acme.example,Paris\n");
    const error = await migrate(database, makeConfig("extra", "extra_orgs", seed)).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(error).toBeInstanceOf(Error);
    expect(error?.message).toContain(join(dir, "extra.csv"));
    expect(error?.message).toContain("pipelines.extra.seed");
    expect(error?.message).toMatch(
      /column city is not the key or an input \(allowed: id, name, website\)/,
    );
    // Table and seed are one transaction: the failed seed leaves no half-installed table behind.
    expect(await tableExists("public.extra_orgs")).toBe(false);
  });

  it("says which file it could not read", async () => {
    const error = await migrate(database, makeConfig("missing", "missing_orgs", "nope.csv")).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(error?.message).toContain(
      `pipelines.missing.seed (${join(dir, "nope.csv")}): cannot read the CSV`,
    );
    expect(await tableExists("public.missing_orgs")).toBe(false);
  });

  it("keeps UTF-8 names with accents, apostrophes, ampersands, quotes and quoted commas", async () => {
    const names = [
      "Société Générale",
      "L'Oréal",
      "Procter & Gamble",
      "Acme, Inc.",
      'The "Best" Company',
      "Zürich Versicherung – AG",
      "株式会社トヨタ",
    ];
    const csv =
      "\uFEFFname,website\n" +
      names.map((n) => `"${n.replace(/"/g, '""')}",${n.length}.example`).join("\r\n") +
      "\r\n";
    const seed = writeCsv("utf8.csv", csv);
    const report = await migrate(database, makeConfig("utf8", "utf8_orgs", seed));
    expect(report.pipelines[0]?.seeded).toBe(names.length);
    const rows = await q<{ name: string; website: string }>(
      "select name, website from utf8_orgs order by id",
    );
    expect(rows.map((r) => r.name)).toEqual(names);
    expect(rows.map((r) => r.website)).toEqual(names.map((n) => `${n.length}.example`));
  });

  it("loads nothing from a CSV that has only a header", async () => {
    const seed = writeCsv("header.csv", "name,website\n");
    const report = await migrate(database, makeConfig("header", "header_orgs", seed));
    expect(report.pipelines).toEqual([
      { name: "header", table: "public.header_orgs", outcome: "created" },
    ]);
    expect(await q("select * from header_orgs")).toEqual([]);
  });
});
