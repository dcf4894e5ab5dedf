/**
 * Text PostgreSQL can store. Its `text` and `jsonb` refuse two things JavaScript strings may
 * hold: the NUL character, and UTF-16 surrogates that do not form a pair (both arrive from web
 * pages, search snippets and LLM answers). One such character in a batch statement fails the
 * whole statement, so every string written must pass through here or be refused.
 */

// A lone high surrogate, or a lone low surrogate.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const LONE_SURROGATES = new RegExp(LONE_SURROGATE.source, "g");

/** True when PostgreSQL can store the string as text. */
export function isStorableText(text: string): boolean {
  return !text.includes("\u0000") && !LONE_SURROGATE.test(text);
}

/** The string with each NUL and lone surrogate replaced by U+FFFD (the replacement character). */
export function toStorableText(text: string): string {
  if (isStorableText(text)) return text;
  return text.replaceAll("\u0000", "\uFFFD").replace(LONE_SURROGATES, "\uFFFD");
}

// JSON.stringify writes NUL as \u0000 and a lone surrogate as a \udXXX escape (a pair is written
// as is), so these escapes, not preceded by another backslash, are the only way such characters
// appear in its output.
const UNSTORABLE_ESCAPE = /(?<!\\)(?:\\\\)*\\u(?:0000|d[89a-f][0-9a-f]{2})/i;

/** True when JSON.stringify output holds a NUL or a lone surrogate (see above). */
export function jsonHasUnstorableText(json: string): boolean {
  // Most text has no \u escape at all: a plain substring search settles it, and the pattern
  // with its lookbehind runs over a write's whole JSON only when one is there.
  return json.includes("\\u") && UNSTORABLE_ESCAPE.test(json);
}

/**
 * JSON text for a jsonb column, with every string made storable (evidence and error text, where
 * a replaced character loses nothing that matters). The common case costs one scan of the text.
 */
export function storableJson(value: unknown): string {
  const text = JSON.stringify(value);
  if (!jsonHasUnstorableText(text)) return text;
  return JSON.stringify(value, (_key, v: unknown) =>
    typeof v === "string" ? toStorableText(v) : v,
  );
}
