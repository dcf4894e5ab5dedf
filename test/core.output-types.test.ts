import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  checkOutputValue,
  convertOutputValue,
  MAX_JSONB_DEPTH,
  PG_TYPE,
  type OutputType,
} from "../src/core/output-types.ts";
import { valuesFromStructuredData } from "../src/crawl/extract-structured-values.ts";
import { validateBatchAnswer } from "../src/llm/json-schema-for-outputs.ts";
import { createTestDatabase, type TestDatabase } from "./support/test-database.ts";

/**
 * One definition per output type, checked against PostgreSQL itself: every value the check
 * accepts is stored by the cast the row write uses (jsonb_to_recordset into the column type),
 * and the values it refuses as unstorable are refused by PostgreSQL too. Then the two readers of
 * values (an LLM's answer, a page's structured data) agree on every case.
 */

let testDb: TestDatabase;
let client: pg.Client;

beforeAll(async () => {
  testDb = await createTestDatabase("output_types");
  client = new pg.Client({ connectionString: testDb.url });
  await client.connect();
});

afterAll(async () => {
  await client?.end();
  await testDb?.drop();
});

/** Stores the value as the row write does; the error message when PostgreSQL refuses it. */
async function storeInPostgres(type: OutputType, value: unknown): Promise<string | undefined> {
  try {
    await client.query(`select x.v from jsonb_to_recordset($1::jsonb) as x(v ${PG_TYPE[type]})`, [
      JSON.stringify([{ v: value }]),
    ]);
    return undefined;
  } catch (error) {
    return (error as Error).message;
  }
}

const deep = (levels: number): unknown => {
  let value: unknown = 1;
  for (let i = 0; i < levels; i++) value = [value];
  return value;
};

const ACCEPTED: [OutputType, unknown][] = [
  ["text", "plain"],
  ["text", "emoji 😀 and accents é"],
  ["text", ""],
  ["integer", 2147483647],
  ["integer", -2147483648],
  ["numeric", 1e308],
  ["numeric", -5e-324],
  ["numeric", 19.99],
  ["boolean", false],
  ["date", "0001-01-01"],
  ["date", "2024-02-29"],
  ["date", "9999-12-31"],
  ["timestamptz", "2024-05-01T13:45:00Z"],
  ["timestamptz", "2024-05-01 13:45+0530"],
  ["timestamptz", "2024-05-01T13:45:00.123456789-15:59"],
  ["text[]", ["a", "b 😀"]],
  ["text[]", []],
  ["jsonb", { a: [1, "two", null, true], "key 😀": { nested: 1.5 } }],
  ["jsonb", "just a string"],
  ["jsonb", deep(MAX_JSONB_DEPTH - 1)],
];

const UNSTORABLE: [OutputType, unknown, RegExp][] = [
  ["text", "a\u0000b", /NUL character/],
  ["text", "half \ud83d of a pair", /lone UTF-16 surrogate \(U\+D83D\)/],
  ["text", "\udc00 trailing half", /lone UTF-16 surrogate \(U\+DC00\)/],
  ["integer", 2147483648, /out of PostgreSQL integer range/],
  ["integer", -2147483649, /out of PostgreSQL integer range/],
  ["date", "0000-06-01", /YYYY-MM-DD/],
  ["timestamptz", "0000-06-01T00:00:00Z", /ISO 8601/],
  ["timestamptz", "2024-05-01T13:45:00,5Z", /ISO 8601/],
  ["timestamptz", "2024-05-01T13:45:00+16:00", /ISO 8601/],
  ["text[]", ["fine", "nul\u0000"], /element 1: contains a NUL/],
  ["jsonb", { text: "a\u0000b" }, /string at \.text contains a NUL/],
  ["jsonb", { ["k\ud800"]: 1 }, /key contains a lone UTF-16 surrogate/],
  ["jsonb", ["ok", ["\udfff"]], /string at \[1\]\[0\] contains a lone/],
];

describe("checkOutputValue against PostgreSQL", () => {
  it.each(ACCEPTED)("%s: %j is accepted and PostgreSQL stores it", async (type, value) => {
    expect(checkOutputValue(type, value)).toEqual({ ok: true, value });
    expect(await storeInPostgres(type, value)).toBeUndefined();
  });

  it.each(UNSTORABLE)(
    "%s: %j is refused with a reason, as PostgreSQL would refuse it",
    async (type, value, reason) => {
      const checked = checkOutputValue(type, value);
      expect(checked.ok).toBe(false);
      if (!checked.ok) expect(checked.error).toMatch(reason);
      expect(await storeInPostgres(type, value)).toBeDefined();
    },
  );

  it("refuses jsonb nested deeper than PostgreSQL's parser takes by default", async () => {
    expect(checkOutputValue("jsonb", deep(MAX_JSONB_DEPTH + 1))).toEqual({
      ok: false,
      error: `nested deeper than ${MAX_JSONB_DEPTH} levels`,
    });
    // Far deeper documents make the write itself fail; the check never overflows its own stack.
    expect(checkOutputValue("jsonb", deep(200_000)).ok).toBe(false);
    const text = `[{"v": ${"[".repeat(50_000)}${"]".repeat(50_000)}}]`;
    await expect(
      client.query("select x.v from jsonb_to_recordset($1::jsonb) as x(v jsonb)", [text]),
    ).rejects.toThrow(/stack depth/);
  });

  it("refuses a timestamp without an offset: PostgreSQL would store a different instant per server time zone", async () => {
    const local = "2024-05-01T13:45:00";
    const instants: string[] = [];
    for (const zone of ["UTC", "Asia/Tokyo"]) {
      await client.query(`set time zone '${zone}'`);
      const { rows } = await client.query<{ at: Date }>(
        `select x.v as at from jsonb_to_recordset($1::jsonb) as x(v timestamptz)`,
        [JSON.stringify([{ v: local }])],
      );
      instants.push((rows[0] as { at: Date }).at.toISOString());
    }
    await client.query("reset time zone");
    expect(new Set(instants).size).toBe(2);
    const checked = checkOutputValue("timestamptz", local);
    expect(checked).toMatchObject({ ok: false });
    if (!checked.ok) expect(checked.error).toMatch(/no UTC offset, so the instant is ambiguous/);
    expect(checkOutputValue("timestamptz", "2024-05-01")).toMatchObject({ ok: false });
  });

  it("never converts between JSON types; convertOutputValue converts only exactly", () => {
    expect(checkOutputValue("integer", "42")).toMatchObject({ ok: false });
    expect(convertOutputValue("integer", "42")).toEqual({ ok: true, value: 42, converted: true });
    expect(convertOutputValue("integer", "120.0")).toEqual({
      ok: true,
      value: 120,
      converted: true,
    });
    expect(convertOutputValue("integer", "120.5")).toMatchObject({ ok: false });
    expect(convertOutputValue("integer", "3000000000")).toMatchObject({
      ok: false,
      error: expect.stringMatching(/out of PostgreSQL integer range/) as unknown,
    });
    expect(convertOutputValue("integer", "about 120")).toMatchObject({ ok: false });
    expect(convertOutputValue("numeric", "1e999")).toMatchObject({ ok: false });
    expect(convertOutputValue("text", 3)).toEqual({ ok: true, value: "3", converted: true });
    expect(convertOutputValue("boolean", " TRUE ")).toEqual({
      ok: true,
      value: true,
      converted: true,
    });
    expect(convertOutputValue("boolean", "yes")).toMatchObject({ ok: false });
  });
});

describe("the LLM answer check and the structured-data reader agree", () => {
  /** Accepted by an LLM answer? */
  const byLlm = (type: OutputType, value: unknown): boolean => {
    const row = validateBatchAnswer(
      { rows: [{ id: "r", v: { value, confidence: 0.9 } }] },
      ["r"],
      [{ name: "v", type, description: "" }],
    ).get("r");
    return row?.ok === true && row.values["v"]?.error === undefined;
  };
  /** Accepted from a page's JSON-LD, under a column of the type? */
  const byPage = (type: OutputType, property: string, value: unknown): boolean =>
    valuesFromStructuredData(
      {
        jsonLd: [{ "@type": "Organization", name: "Acme", [property]: value }],
        jsonLdErrors: 0,
        microdata: [],
        openGraph: {},
        meta: {},
      },
      [{ name: property, type }],
    )[property] !== undefined;

  it.each([
    ["2024-03-18T07:30:00+01:00", true],
    ["2024-03-18T07:30:00Z", true],
    ["2024-03-18 07:30+0100", true],
    ["2024-03-18T07:30:00", false],
    ["2024-03-18", false],
    ["2024-03-18T07:30:00,5Z", false],
    ["2024-02-30T07:30:00Z", false],
    ["2024-03-18T24:00:00Z", false],
    ["0000-03-18T07:30:00Z", false],
    ["2024-03-18T07:30:00+16:00", false],
  ] as [string, boolean][])("timestamptz %j", (text, accepted) => {
    expect(byLlm("timestamptz", text)).toBe(accepted);
    expect(byPage("timestamptz", "dissolutionDate", text)).toBe(accepted);
  });

  it.each([
    ["text", "description", "ok text", true],
    ["text", "description", "with a \u0000 NUL", false],
    ["text", "description", "with a lone \ud83d", false],
    ["integer", "numberOfEmployees", 2147483647, true],
    ["integer", "numberOfEmployees", 3000000000, false],
    ["numeric", "numberOfEmployees", 12.5, true],
    ["date", "foundingDate", "1998-05-01", true],
    ["date", "foundingDate", "0000-05-01", false],
    ["jsonb", "address", { city: "x\u0000" }, false],
    ["jsonb", "address", { city: "Lyon" }, true],
  ] as [OutputType, string, unknown, boolean][])("%s %s %j", (type, property, value, accepted) => {
    // The LLM path carries jsonb as JSON text.
    const answered = type === "jsonb" ? JSON.stringify(value) : value;
    expect(byLlm(type, answered)).toBe(accepted);
    expect(byPage(type, property, value)).toBe(accepted);
  });
});
