import { describe, expect, it } from "vitest";
import { buildAnswerSchema, validateBatchAnswer } from "../src/llm/json-schema-for-outputs.ts";
import { LlmError } from "../src/llm/llm-error.ts";
import type { OutputSpec, OutputType } from "../src/core/output-types.ts";

const ALL_TYPES: OutputType[] = [
  "text",
  "integer",
  "numeric",
  "boolean",
  "date",
  "timestamptz",
  "text[]",
  "jsonb",
];
const outputs: OutputSpec[] = ALL_TYPES.map((type) => ({
  name: `o_${type.replace("[]", "_list")}`,
  type,
  description: `an output of type ${type}`,
}));

/** Every object schema in the tree, for the strict-mode invariants. */
function objectSchemas(
  node: unknown,
  found: Record<string, unknown>[] = [],
): Record<string, unknown>[] {
  if (Array.isArray(node)) {
    for (const item of node) objectSchemas(item, found);
  } else if (typeof node === "object" && node !== null) {
    const record = node as Record<string, unknown>;
    if (record["type"] === "object") found.push(record);
    for (const value of Object.values(record)) objectSchemas(value, found);
  }
  return found;
}

function one(type: OutputType, field: unknown): ReturnType<typeof validateBatchAnswer> {
  return validateBatchAnswer(
    { rows: [{ id: "r1", v: field }] },
    ["r1"],
    [{ name: "v", type, description: "" }],
  );
}

function valueOf(type: OutputType, value: unknown, confidence: unknown = 0.8) {
  const row = one(type, { value, confidence }).get("r1");
  if (!row?.ok) throw new Error("expected the row to be ok");
  return row.values["v"];
}

describe("buildAnswerSchema", () => {
  const schema = buildAnswerSchema(outputs);

  it("is valid for OpenAI strict mode: closed objects, every property required", () => {
    const objects = objectSchemas(schema);
    expect(objects.length).toBe(2 + outputs.length);
    for (const object of objects) {
      expect(object["additionalProperties"]).toBe(false);
      const properties = Object.keys(object["properties"] as Record<string, unknown>);
      expect([...(object["required"] as string[])].sort()).toEqual(properties.sort());
    }
  });

  it("makes every value nullable and carries jsonb as a string", () => {
    const row = (
      (schema["properties"] as Record<string, { items: { properties: Record<string, unknown> } }>)[
        "rows"
      ] as { items: { properties: Record<string, { properties: { value: { type: string[] } } }> } }
    ).items.properties;
    expect(row["id"]).toMatchObject({ type: "string" });
    for (const output of outputs) {
      expect(row[output.name]?.properties.value.type).toContain("null");
    }
    expect(row["o_jsonb"]?.properties.value.type).toEqual(["string", "null"]);
    expect(row["o_text_list"]?.properties.value).toEqual({
      type: ["array", "null"],
      items: { type: "string" },
    });
    expect(row["o_integer"]).toMatchObject({ description: "an output of type integer" });
  });

  it("rejects an output named id and duplicate names", () => {
    expect(() => buildAnswerSchema([{ name: "id", type: "text", description: "" }])).toThrow(/id/);
    const dup: OutputSpec = { name: "x", type: "text", description: "" };
    expect(() => buildAnswerSchema([dup, dup])).toThrow(/twice/);
  });
});

describe("validateBatchAnswer", () => {
  it("accepts a well-formed answer of every type", () => {
    const answer = {
      rows: [
        {
          id: "r1",
          o_text: { value: "hi", confidence: 0.9 },
          o_integer: { value: 42, confidence: 1 },
          o_numeric: { value: 4.5, confidence: 0.5 },
          o_boolean: { value: false, confidence: 0 },
          o_date: { value: "2024-02-29", confidence: 0.7 },
          o_timestamptz: { value: "2024-05-01T13:45:00.123+02:00", confidence: 0.7 },
          o_text_list: { value: ["a", "b"], confidence: 0.6 },
          o_jsonb: { value: '{"k": [1, 2]}', confidence: 0.6 },
        },
      ],
    };
    const row = validateBatchAnswer(answer, ["r1"], outputs).get("r1");
    expect(row).toEqual({
      ok: true,
      values: {
        o_text: { value: "hi", confidence: 0.9 },
        o_integer: { value: 42, confidence: 1 },
        o_numeric: { value: 4.5, confidence: 0.5 },
        o_boolean: { value: false, confidence: 0 },
        o_date: { value: "2024-02-29", confidence: 0.7 },
        o_timestamptz: { value: "2024-05-01T13:45:00.123+02:00", confidence: 0.7 },
        o_text_list: { value: ["a", "b"], confidence: 0.6 },
        o_jsonb: { value: { k: [1, 2] }, confidence: 0.6 },
      },
    });
  });

  it("keeps null values without error", () => {
    expect(valueOf("integer", null)).toEqual({ value: null, confidence: 0.8 });
  });

  it("reports missing rows, ignores unknown ids, accepts numeric ids", () => {
    const answer = { rows: [{ id: 7, v: { value: "x", confidence: 1 } }, { id: "zz" }] };
    const result = validateBatchAnswer(
      answer,
      ["7", "8"],
      [{ name: "v", type: "text", description: "" }],
    );
    expect(result.get("7")).toEqual({ ok: true, values: { v: { value: "x", confidence: 1 } } });
    expect(result.get("8")).toEqual({ ok: false, error: "row missing from the answer" });
    expect(result.has("zz")).toBe(false);
  });

  it("marks a row that is not an object", () => {
    const spec: OutputSpec[] = [{ name: "v", type: "text", description: "" }];
    const result = validateBatchAnswer(
      { rows: ["nope", { id: "b", v: { value: "y", confidence: 1 } }] },
      ["a", "b"],
      spec,
    );
    expect(result.get("a")).toMatchObject({
      ok: false,
      error: expect.stringMatching(/object/) as unknown,
    });
    expect(result.get("b")).toMatchObject({ ok: true });
  });

  it("flags a row answered twice with different values", () => {
    const spec: OutputSpec[] = [{ name: "v", type: "text", description: "" }];
    const answer = {
      rows: [
        { id: "a", v: { value: "x", confidence: 1 } },
        { id: "a", v: { value: "y", confidence: 1 } },
      ],
    };
    expect(validateBatchAnswer(answer, ["a"], spec).get("a")).toMatchObject({ ok: false });
  });

  it("throws invalid_output when there is no rows array", () => {
    for (const bad of [null, [], "rows", { rows: {} }, { data: [] }]) {
      expect(() => validateBatchAnswer(bad, ["a"], [])).toThrow(LlmError);
    }
    try {
      validateBatchAnswer({}, ["a"], []);
    } catch (err) {
      expect(err).toMatchObject({ errorClass: "invalid_output" });
    }
  });

  it.each<[OutputType, unknown, RegExp]>([
    ["integer", "42", /expected an integer, got string "42"/],
    ["integer", 4.5, /expected an integer, got number 4.5/],
    ["integer", 2 ** 60, /out of PostgreSQL integer range/],
    ["integer", 2147483648, /out of PostgreSQL integer range/],
    ["numeric", "4.5", /expected a finite number/],
    ["boolean", "true", /expected a boolean, got string "true"/],
    ["boolean", 1, /expected a boolean/],
    ["text", 5, /expected a string, got number 5/],
    ["date", "2023-02-29", /YYYY-MM-DD/],
    ["date", "2024-13-01", /YYYY-MM-DD/],
    ["date", "01/02/2024", /YYYY-MM-DD/],
    ["date", "2024-01-01T00:00:00Z", /YYYY-MM-DD/],
    ["timestamptz", "yesterday", /ISO 8601/],
    ["timestamptz", "2024-02-30T10:00:00Z", /ISO 8601/],
    ["timestamptz", "2024-01-01T25:00:00Z", /ISO 8601/],
    ["timestamptz", 1714567890, /ISO 8601/],
    ["timestamptz", "2024-01-01", /ISO 8601 timestamp with an offset/],
    ["timestamptz", "2024-01-01T10:00:00", /no UTC offset, so the instant is ambiguous/],
    ["timestamptz", "2024-01-01T10:00:00,5Z", /ISO 8601/],
    ["timestamptz", "0000-01-01T10:00:00Z", /ISO 8601/],
    ["date", "0000-01-01", /YYYY-MM-DD/],
    ["text", "nul\u0000inside", /NUL character \(U\+0000\)/],
    ["text", "lone \ud83d surrogate", /lone UTF-16 surrogate \(U\+D83D\)/],
    ["text[]", ["ok", "\udc00"], /element 1: contains a lone UTF-16 surrogate/],
    ["jsonb", '{"a": "x\\u0000y"}', /string at \.a contains a NUL character/],
    ["jsonb", { "k\u0000": 1 }, /key contains a NUL character/],
    ["jsonb", "[1e999]", /number at \[0\] is not finite/],
    ["text[]", ["a", 1], /array of strings/],
    ["text[]", "a", /array of strings/],
    ["jsonb", "{not json", /JSON text/],
  ])("%s rejects %j without coercing", (type, value, message) => {
    const answer = valueOf(type, value);
    expect(answer?.value).toBeNull();
    expect(answer?.confidence).toBe(0.8);
    expect(answer?.error).toMatch(message);
  });

  it.each<[OutputType, unknown, unknown]>([
    ["integer", 42.0, 42],
    ["integer", -3, -3],
    ["numeric", 0, 0],
    ["timestamptz", "2024-01-01T10:00:00Z", "2024-01-01T10:00:00Z"],
    ["timestamptz", "2024-01-01 10:00+0530", "2024-01-01 10:00+0530"],
    ["text[]", [], []],
    ["jsonb", { a: 1 }, { a: 1 }],
    ["jsonb", "[1,2]", [1, 2]],
  ])("%s accepts %j", (type, value, stored) => {
    expect(valueOf(type, value)).toEqual({ value: stored, confidence: 0.8 });
  });

  it.each([[1.5], [-0.1], ["0.9"], [null], [undefined]])("rejects confidence %j", (confidence) => {
    const row = one("text", { value: "x", confidence }).get("r1");
    const answer = row?.ok ? row.values["v"] : undefined;
    expect(answer).toMatchObject({
      value: null,
      error: expect.stringMatching(/confidence/) as unknown,
    });
  });

  it("reports a missing or bare value as an error for that value only", () => {
    const spec: OutputSpec[] = [
      { name: "a", type: "text", description: "" },
      { name: "b", type: "text", description: "" },
      { name: "c", type: "text", description: "" },
    ];
    const row = validateBatchAnswer(
      { rows: [{ id: "r", a: "bare", c: { value: "ok", confidence: 1 } }] },
      ["r"],
      spec,
    ).get("r");
    expect(row).toEqual({
      ok: true,
      values: {
        a: {
          value: null,
          confidence: 0,
          error: expect.stringMatching(/expected an object/) as unknown,
        },
        b: { value: null, confidence: 0, error: "missing from the answer" },
        c: { value: "ok", confidence: 1 },
      },
    });
  });
});
