import { describe, expect, it } from "vitest";
import type { ColumnRules } from "../src/config/config-types.ts";
import { parseConfig } from "../src/config/load-config.ts";
import { fitCalibration, interpolate } from "../src/pipeline/confidence-calibration.ts";
import { expectedCalibrationError } from "../src/eval/calibration-table.ts";
import { isKnown, sameValue } from "../src/eval/compare-values.ts";
import { parseFailBelow } from "../src/eval/fail-below.ts";

const rules = (r: Partial<ColumnRules>): ColumnRules => ({
  tolerance: undefined,
  precision: undefined,
  synonyms: [],
  ...r,
});

describe("comparison rules", () => {
  it("numbers: exact integers, 1% for numerics, or the tolerance given", () => {
    expect(sameValue("integer", undefined, 120, "120")).toBe(true);
    expect(sameValue("integer", undefined, 121, "120")).toBe(false);
    expect(sameValue("integer", undefined, 1200, "1,200")).toBe(true);
    expect(sameValue("numeric", undefined, 100.9, "100")).toBe(true);
    expect(sameValue("numeric", undefined, 101.5, "100")).toBe(false);
    const fivePct = rules({ tolerance: { amount: 0.05, relative: true } });
    expect(sameValue("integer", fivePct, 104, "100")).toBe(true);
    expect(sameValue("integer", fivePct, 106, "100")).toBe(false);
    const two = rules({ tolerance: { amount: 2, relative: false } });
    expect(sameValue("integer", two, 1002, 1000)).toBe(true);
    expect(sameValue("integer", two, "about 1000", 1000)).toBe(false);
  });

  it("dates: down to the precision the known value states, or the one configured", () => {
    expect(sameValue("date", undefined, "2019-06-15", "2019")).toBe(true);
    expect(sameValue("date", undefined, "2020-01-01", "2019")).toBe(false);
    expect(sameValue("date", undefined, "2019-06-15", "2019-06")).toBe(true);
    expect(sameValue("date", undefined, "2019-06-15", "2019-06-14")).toBe(false);
    expect(sameValue("date", rules({ precision: "month" }), "2019-06-15", "2019-06-14")).toBe(true);
    expect(
      sameValue("timestamptz", undefined, "2024-05-01T15:45:00+02:00", "2024-05-01T13:45:00Z"),
    ).toBe(true);
    expect(
      sameValue(
        "timestamptz",
        rules({ precision: "hour" }),
        "2024-05-01T13:59:00Z",
        "2024-05-01T13:05:00Z",
      ),
    ).toBe(true);
  });

  it("text: case, spaces and synonyms; lists as sets", () => {
    expect(sameValue("text", undefined, "  new   YORK ", "New York")).toBe(true);
    expect(sameValue("text", undefined, "Newark", "New York")).toBe(false);
    const nyc = rules({ synonyms: [["New York", "NYC", "New York City"]] });
    expect(sameValue("text", nyc, "nyc", "New York City")).toBe(true);
    expect(sameValue("text[]", undefined, ["B", "a"], "{a,b}")).toBe(true);
    expect(sameValue("text[]", undefined, ["a"], '["a","b"]')).toBe(false);
    expect(sameValue("boolean", undefined, true, "yes")).toBe(true);
    expect(sameValue("jsonb", undefined, '{"b":1,"a":[2]}', { a: [2], b: 1 })).toBe(true);
    expect(isKnown("")).toBe(false);
    expect(isKnown(null)).toBe(false);
    expect(isKnown(0)).toBe(true);
  });

  it("config: rules must fit the column's type, and each error names its key", () => {
    const yaml = (columns: string) => `
llm: { backends: [{ name: p, base_url: "http://127.0.0.1:9/v1", model: m }] }
pipelines:
  orgs:
    table: orgs
    inputs: [name]
    outputs: { city: { type: text, description: c }, staff: { type: integer, description: s } }
    eval: { columns: ${columns} }
    stages: [{ name: a, kind: llm, backends: [p], prompt: "{{name}}", outputs: [city, staff] }]
`;
    const ok = parseConfig(yaml(`{ staff: { tolerance: "5%" }, city: { synonyms: [[a, b]] } }`));
    expect(ok.pipelines[0]?.eval.columns["staff"]?.tolerance).toEqual({
      amount: 0.05,
      relative: true,
    });
    expect(() => parseConfig(yaml(`{ city: { tolerance: 3 } }`))).toThrow(
      /pipelines\.orgs\.eval\.columns\.city\.tolerance.*applies to integer and numeric/,
    );
    expect(() => parseConfig(yaml(`{ town: { tolerance: 3 } }`))).toThrow(
      /pipelines\.orgs\.eval\.columns\.town.*not an output/,
    );
  });
});

describe("calibration", () => {
  it("maps an overconfident 0.9 to the accuracy seen, and stays monotone", () => {
    const samples = [
      ...Array.from({ length: 50 }, (_, i) => ({ confidence: 0.9, correct: i % 2 === 0 })),
      ...Array.from({ length: 50 }, (_, i) => ({ confidence: 0.6, correct: i % 5 === 0 })),
    ];
    expect(expectedCalibrationError(samples)).toBeCloseTo(0.4, 3);
    const points = fitCalibration(samples);
    const ys = points.map((p) => p[1]);
    expect([...ys].sort((a, b) => a - b)).toEqual(ys);
    expect(interpolate(points, 0.9)).toBeCloseTo(0.5, 1);
    expect(interpolate(points, 0.6)).toBeCloseTo(0.2, 1);
    const after = samples.map((s) => ({ ...s, confidence: interpolate(points, s.confidence) }));
    expect(expectedCalibrationError(after)).toBeLessThan(0.05);
  });
});

describe("--fail-below", () => {
  it("reads overall and per-column figures", () => {
    expect(parseFailBelow("precision=0.9,city.recall=0.5")).toEqual([
      { column: undefined, figure: "precision", min: 0.9 },
      { column: "city", figure: "recall", min: 0.5 },
    ]);
    expect(() => parseFailBelow("accuracy=0.9")).toThrow(/not <figure>=<0..1>/);
  });
});
