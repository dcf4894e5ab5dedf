import { hash } from "node:crypto";

/**
 * A sha256 (hex) of a JSON-like value that does not depend on the order of object keys, so a
 * value read back from jsonb (which reorders keys) hashes like the one that was written.
 * `undefined` object members are left out, as JSON.stringify leaves them out; `undefined` in an
 * array and every non-finite number become null, as JSON.stringify writes them.
 */
export function contentHash(value: unknown): string {
  // One-shot: every row's stage input and every call's cache key is hashed, and a Hash object
  // per value cost more than the small text it hashed (1.9 against 0.75 µs).
  return hash("sha256", canonicalJson(value), "hex");
}

/**
 * A value whose canonical JSON is already known: canonicalJson writes `text` in its place. For a
 * large value hashed again and again unchanged (an answer schema, in every cache key), see
 * `canonicalOnce`.
 */
export class CanonicalText {
  constructor(readonly text: string) {}
}

const known = new WeakMap<object, CanonicalText>();

/**
 * The canonical JSON of `value`, computed once per object: only for objects never changed after
 * they are first hashed (a stage's answer schema, built once).
 */
export function canonicalOnce(value: object): CanonicalText {
  let found = known.get(value);
  if (!found) {
    found = new CanonicalText(canonicalJson(value));
    known.set(value, found);
  }
  return found;
}

/** JSON text with object keys sorted at every level. */
export function canonicalJson(value: unknown): string {
  if (value === null || value === undefined) return "null";
  switch (typeof value) {
    case "string":
    case "boolean":
      return JSON.stringify(value);
    case "number":
      return Number.isFinite(value) ? JSON.stringify(value) : "null";
    case "bigint":
      return value.toString();
    case "object":
      break;
    default:
      // Functions and symbols: JSON has no value for them.
      return "null";
  }
  if (value instanceof CanonicalText) return value.text;
  if (value instanceof Date) return JSON.stringify(value.toISOString());
  if (Array.isArray(value)) {
    let out = "[";
    for (let i = 0; i < value.length; i++) out += (i > 0 ? "," : "") + canonicalJson(value[i]);
    return out + "]";
  }
  // Hot (every cache key, every stage record): one pass over sorted keys, no intermediate arrays
  // of entries. Keys compare by UTF-16 code units, as the `<` they were sorted with before.
  const object = value as Record<string, unknown>;
  const keys = Object.keys(object).sort();
  let out = "{";
  let first = true;
  for (const key of keys) {
    const member = object[key];
    if (member === undefined || typeof member === "function") continue;
    out += (first ? "" : ",") + JSON.stringify(key) + ":" + canonicalJson(member);
    first = false;
  }
  return out + "}";
}
