import { describe, expect, it } from "vitest";
import { LlmError } from "../src/llm/llm-error.ts";
import { parseJsonAnswer } from "../src/llm/parse-json-answer.ts";

describe("parseJsonAnswer", () => {
  it("parses bare JSON, with surrounding whitespace", () => {
    expect(parseJsonAnswer('  {"rows": []}\n')).toEqual({ rows: [] });
    expect(parseJsonAnswer("[1, 2]")).toEqual([1, 2]);
  });

  it("parses a ```json fenced block inside prose", () => {
    const text = 'Here you go:\n```json\n{"rows": [{"id": "1"}]}\n```\nAnything else?';
    expect(parseJsonAnswer(text)).toEqual({ rows: [{ id: "1" }] });
  });

  it("parses a plain ``` fenced block", () => {
    expect(parseJsonAnswer('```\n{"a": 1}\n```')).toEqual({ a: 1 });
  });

  it("skips a fenced block that is not JSON and takes the next one", () => {
    const text = '```\nnot json\n```\nthen\n```json\n{"b": 2}\n```';
    expect(parseJsonAnswer(text)).toEqual({ b: 2 });
  });

  it("finds the first balanced object in prose, honouring braces inside strings", () => {
    const text = 'The answer is {"note": "a } and { inside", "n": {"x": 1}} — hope it helps {oops';
    expect(parseJsonAnswer(text)).toEqual({ note: "a } and { inside", n: { x: 1 } });
  });

  it("moves past a balanced but invalid object", () => {
    expect(parseJsonAnswer('see {not json} and {"ok": true}')).toEqual({ ok: true });
  });

  it("ignores <think> blocks of reasoning models", () => {
    expect(parseJsonAnswer('<think>maybe {x}? {"a": 0}</think>\n{"a": 1}')).toEqual({ a: 1 });
  });

  it("throws invalid_output when nothing parses", () => {
    const err = (() => {
      try {
        parseJsonAnswer('Sure! {"rows": [{"id": "1", "x": ');
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(err).toBeInstanceOf(LlmError);
    expect(err).toMatchObject({ errorClass: "invalid_output", permanent: false });
  });

  it("throws invalid_output for empty text", () => {
    expect(() => parseJsonAnswer("   ")).toThrow(LlmError);
  });
});
