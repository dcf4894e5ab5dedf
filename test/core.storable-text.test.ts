import { expect, it } from "vitest";
import { jsonHasUnstorableText, storableJson } from "../src/core/storable-text.ts";

it("finds a NUL or a lone surrogate in JSON text, and nothing in text without one", () => {
  expect(jsonHasUnstorableText(JSON.stringify({ a: "plain text, é, 😀" }))).toBe(false);
  expect(jsonHasUnstorableText(JSON.stringify({ a: "nul \u0000 here" }))).toBe(true);
  expect(jsonHasUnstorableText(JSON.stringify(["lone \uD83D high"]))).toBe(true);
  expect(jsonHasUnstorableText(JSON.stringify(["lone \uDE00 low"]))).toBe(true);
  // Other escapes JSON.stringify writes (control characters) are storable.
  expect(jsonHasUnstorableText(JSON.stringify({ a: "bell \u0007 tab \t" }))).toBe(false);
  // A backslash and "u0000" typed as text is storable: its backslash is escaped in the JSON.
  expect(jsonHasUnstorableText(JSON.stringify({ a: "literal \\u0000 and \\\\ud800" }))).toBe(false);
  expect(jsonHasUnstorableText(JSON.stringify({ a: "\\", b: "\u0000" }))).toBe(true);
});

it("replaces only the characters PostgreSQL refuses", () => {
  expect(storableJson({ a: "x\u0000y", b: ["\uD800"], c: "😀" })).toBe(
    '{"a":"x\uFFFDy","b":["\uFFFD"],"c":"😀"}',
  );
  const clean = { a: "literal \\u0000" };
  expect(storableJson(clean)).toBe(JSON.stringify(clean));
});
