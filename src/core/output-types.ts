import { canonicalJson } from "./content-hash.ts";

/**
 * The output types a pipeline can declare, defined once: the PostgreSQL type of the column, the
 * existing column types that can hold it, the JSON Schema an LLM answers in, and the check that
 * a value is of the type and can be stored by PostgreSQL. The LLM answer check, custom stages,
 * the structured-data reader and the DDL all use these, so no path accepts a value another
 * rejects, and no value reaches the write that PostgreSQL would refuse (one refused value would
 * fail the statement that writes a whole batch).
 *
 * Timestamps must carry an offset (`Z`, `+02:00`, `-0530`): without one PostgreSQL would read the
 * time in the session's time zone, so the instant stored would depend on the server. Such a value
 * is rejected as ambiguous, never read as UTC.
 */

export const OUTPUT_TYPES = [
  "text",
  "integer",
  "numeric",
  "boolean",
  "date",
  "timestamptz",
  "text[]",
  "jsonb",
] as const;

export type OutputType = (typeof OUTPUT_TYPES)[number];

export interface OutputSpec {
  name: string;
  type: OutputType;
  description: string;
}

/** The column type Gleaner creates, and casts values to when it writes them. */
export const PG_TYPE: Record<OutputType, string> = {
  text: "text",
  integer: "integer",
  numeric: "numeric",
  boolean: "boolean",
  date: "date",
  timestamptz: "timestamptz",
  "text[]": "text[]",
  jsonb: "jsonb",
};

/** format_type() names an existing column may have and still hold a declared output type. */
export const COMPATIBLE_TYPES: Record<OutputType, readonly string[]> = {
  text: ["text", "character varying", "character", "citext"],
  integer: ["integer", "bigint", "smallint"],
  numeric: ["numeric", "double precision", "real"],
  boolean: ["boolean"],
  date: ["date"],
  timestamptz: ["timestamp with time zone"],
  "text[]": ["text[]", "character varying[]"],
  jsonb: ["jsonb", "json"],
};

/** PostgreSQL `integer`: values are cast to it when written, whatever the column's type. */
export const PG_INTEGER_MIN = -2147483648;
export const PG_INTEGER_MAX = 2147483647;
/** Nesting PostgreSQL's JSON parser takes with its default stack; deeper fails the write. */
export const MAX_JSONB_DEPTH = 1000;

/**
 * The JSON Schema of one value of the type, nullable. OpenAI strict mode has no "any" type, so
 * jsonb travels as JSON text.
 */
export function outputValueSchema(type: OutputType): Record<string, unknown> {
  switch (type) {
    case "text":
      return { type: ["string", "null"] };
    case "integer":
      return { type: ["integer", "null"] };
    case "numeric":
      return { type: ["number", "null"] };
    case "boolean":
      return { type: ["boolean", "null"] };
    case "date":
      return { type: ["string", "null"], description: "Calendar date as YYYY-MM-DD." };
    case "timestamptz":
      return {
        type: ["string", "null"],
        description: "ISO 8601 timestamp with UTC offset, e.g. 2024-05-01T13:45:00Z.",
      };
    case "text[]":
      return { type: ["array", "null"], items: { type: "string" } };
    case "jsonb":
      return { type: ["string", "null"], description: "A JSON document, encoded as a string." };
  }
}

export type CheckedValue = { ok: true; value: unknown } | { ok: false; error: string };
/** `converted`: the value had another JSON type (or form) and was converted exactly. */
export type ConvertedValue =
  { ok: true; value: unknown; converted: boolean } | { ok: false; error: string };

/**
 * Checks a non-null value against the type without converting between JSON types: the LLM's
 * answers and custom stages' values must already have the declared type.
 */
export function checkOutputValue(type: OutputType, value: unknown): CheckedValue {
  const wrong = (expected: string): CheckedValue => ({
    ok: false,
    error: `expected ${expected}, got ${describeValue(value)}`,
  });
  switch (type) {
    case "text":
      return typeof value === "string" ? storableText(value) : wrong("a string");
    case "integer":
      if (typeof value !== "number" || !Number.isInteger(value)) return wrong("an integer");
      return integerInRange(value);
    case "numeric":
      // JSON.parse reads 1e999 as Infinity; PostgreSQL numeric holds every finite double.
      return typeof value === "number" && Number.isFinite(value)
        ? { ok: true, value }
        : wrong("a finite number");
    case "boolean":
      return typeof value === "boolean" ? { ok: true, value } : wrong("a boolean");
    case "date":
      return typeof value === "string" && isIsoDate(value)
        ? { ok: true, value }
        : wrong("a date as YYYY-MM-DD");
    case "timestamptz":
      return typeof value === "string" ? checkTimestamp(value) : wrong(TIMESTAMP_WANTED);
    case "text[]": {
      if (!Array.isArray(value) || !value.every((item) => typeof item === "string"))
        return wrong("an array of strings");
      for (const [index, item] of value.entries()) {
        const checked = storableText(item);
        if (!checked.ok) return { ok: false, error: `element ${index}: ${checked.error}` };
      }
      return { ok: true, value };
    }
    case "jsonb":
      return storableJson(value);
  }
}

const DECIMAL_TEXT = /^[+-]?(?:\d+(?:\.\d+)?|\.\d+)(?:[eE][+-]?\d+)?$/;

/**
 * Converts a value of another JSON type to the declared type when the conversion is exact
 * ("120" → 120, "120.0" → 120, 3 → "3", "true" → true), never when it would guess ("about 120",
 * "120.5" for an integer). The result passes checkOutputValue.
 */
export function convertOutputValue(type: OutputType, value: unknown): ConvertedValue {
  const direct = checkOutputValue(type, value);
  if (direct.ok) return { ...direct, converted: false };
  const converted = (result: CheckedValue): ConvertedValue =>
    result.ok ? { ...result, converted: true } : result;
  switch (type) {
    case "text":
      if ((typeof value === "number" && Number.isFinite(value)) || typeof value === "boolean")
        return { ok: true, value: String(value), converted: true };
      return direct;
    case "integer":
    case "numeric": {
      if (typeof value !== "string") return direct;
      const text = value.trim();
      // "120.0" is the integer 120; "120.5" stays a number and fails the integer check.
      return DECIMAL_TEXT.test(text) ? converted(checkOutputValue(type, Number(text))) : direct;
    }
    case "boolean": {
      const text = typeof value === "string" ? value.trim().toLowerCase() : "";
      if (text === "true") return { ok: true, value: true, converted: true };
      if (text === "false") return { ok: true, value: false, converted: true };
      return direct;
    }
    default:
      return direct;
  }
}

function integerInRange(value: number): CheckedValue {
  return value >= PG_INTEGER_MIN && value <= PG_INTEGER_MAX
    ? { ok: true, value }
    : {
        ok: false,
        error: `${value} is out of PostgreSQL integer range (${PG_INTEGER_MIN} to ${PG_INTEGER_MAX})`,
      };
}

// A lone half of a surrogate pair: not a Unicode character, refused by PostgreSQL's JSON input.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Why PostgreSQL cannot store this text, or undefined when it can. */
export function unstorableTextReason(text: string): string | undefined {
  if (text.includes("\u0000"))
    return "contains a NUL character (U+0000), which PostgreSQL text cannot hold";
  const lone = LONE_SURROGATE.exec(text);
  if (lone)
    return `contains a lone UTF-16 surrogate (U+${lone[0].charCodeAt(0).toString(16).toUpperCase()}) at index ${lone.index}, which is not a character`;
  return undefined;
}

function storableText(text: string): CheckedValue {
  const reason = unstorableTextReason(text);
  return reason === undefined ? { ok: true, value: text } : { ok: false, error: reason };
}

/**
 * Every string (and key) of a JSON value storable, every number finite, nesting within
 * MAX_JSONB_DEPTH. Walked with a stack of its own: a deep document must not overflow ours.
 */
function storableJson(root: unknown): CheckedValue {
  const stack: { value: unknown; depth: number; path: string }[] = [
    { value: root, depth: 0, path: "" },
  ];
  while (stack.length > 0) {
    const { value, depth, path } = stack.pop() as (typeof stack)[number];
    const at = path === "" ? "" : ` at ${path}`;
    if (depth > MAX_JSONB_DEPTH)
      return { ok: false, error: `nested deeper than ${MAX_JSONB_DEPTH} levels` };
    if (value === null || typeof value === "boolean") continue;
    if (typeof value === "string") {
      const reason = unstorableTextReason(value);
      if (reason) return { ok: false, error: `string${at} ${reason}` };
      continue;
    }
    if (typeof value === "number") {
      if (!Number.isFinite(value)) return { ok: false, error: `number${at} is not finite` };
      continue;
    }
    if (Array.isArray(value)) {
      value.forEach((item, i) =>
        stack.push({ value: item, depth: depth + 1, path: `${path}[${i}]` }),
      );
      continue;
    }
    if (typeof value === "object") {
      for (const [key, item] of Object.entries(value)) {
        const reason = unstorableTextReason(key);
        if (reason) return { ok: false, error: `key${at} ${reason}` };
        stack.push({ value: item, depth: depth + 1, path: `${path}.${clip(key, 40)}` });
      }
      continue;
    }
    return { ok: false, error: `${describeValue(value)}${at} is not JSON` };
  }
  return { ok: true, value: root };
}

function daysInMonth(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

/** Year 0001 to 9999 (PostgreSQL has no year 0), a month that exists, a day in that month. */
function isRealDate(year: string, month: string, day: string): boolean {
  const y = Number(year);
  const m = Number(month);
  const d = Number(day);
  return y >= 1 && m >= 1 && m <= 12 && d >= 1 && d <= daysInMonth(y, m);
}

const ISO_DATE = /^(\d{4})-(\d{2})-(\d{2})$/;

/** `YYYY-MM-DD` naming a real calendar day. Date.parse would roll 2024-02-30 over. */
export function isIsoDate(text: string): boolean {
  const m = ISO_DATE.exec(text);
  return m !== null && isRealDate(m[1] as string, m[2] as string, m[3] as string);
}

const ISO_TIMESTAMP =
  /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(?:([Zz])|([+-])(\d{2})(?::?(\d{2}))?)?$/;
const TIMESTAMP_WANTED = "an ISO 8601 timestamp with an offset (2024-05-01T13:45:00Z)";

function checkTimestamp(text: string): CheckedValue {
  const m = ISO_TIMESTAMP.exec(text);
  const wrong: CheckedValue = {
    ok: false,
    error: `expected ${TIMESTAMP_WANTED}, got ${describeValue(text)}`,
  };
  if (!m) return wrong;
  const [, year, month, day, hour, minute, second, zulu, sign, offsetHour, offsetMinute] = m;
  if (!isRealDate(year as string, month as string, day as string)) return wrong;
  if (Number(hour) > 23 || Number(minute) > 59 || Number(second ?? 0) > 59) return wrong;
  if (zulu === undefined && sign === undefined)
    return {
      ok: false,
      error: `${describeValue(text)} has no UTC offset, so the instant is ambiguous: expected ${TIMESTAMP_WANTED}`,
    };
  // PostgreSQL takes offsets up to ±15:59.
  if (Number(offsetHour ?? 0) > 15 || Number(offsetMinute ?? 0) > 59) return wrong;
  return { ok: true, value: text };
}

/** The calendar date written at the start of an ISO timestamp, as written (no zone shift). */
export function dateOfIsoTimestamp(text: string): string | undefined {
  const m = ISO_TIMESTAMP.exec(text);
  if (!m) return undefined;
  const date = `${m[1]}-${m[2]}-${m[3]}`;
  return isIsoDate(date) ? date : undefined;
}

/** Short description of a JSON value for error messages; never splits a character. */
export function describeValue(value: unknown): string {
  if (value === undefined) return "nothing";
  if (value === null) return "null";
  if (Array.isArray(value)) return `an array of ${value.length}`;
  if (typeof value === "object") return "an object";
  // JSON.stringify escapes NUL and lone surrogates, so the message itself is storable.
  const text =
    typeof value === "string" || typeof value === "number" || typeof value === "boolean"
      ? JSON.stringify(value)
      : "";
  return `${typeof value} ${clip(text, 40)}`.trimEnd();
}

function clip(text: string, max: number): string {
  if (text.length <= max) return text;
  let end = max;
  // Cutting between the halves of a pair would leave a lone surrogate in the message.
  if (/[\uD800-\uDBFF]/.test(text[end - 1] ?? "")) end--;
  return `${text.slice(0, end)}…`;
}

/** How close two numbers must be, relative to the larger, to count as the same value. */
export interface SameValueOptions {
  /** Default 0 for `integer` (a year or a count is exact), 0.001 for `numeric`. */
  relativeTolerance?: number;
}

/**
 * Whether two non-null values of the type state the same thing, as a reader would judge: numbers
 * within a relative tolerance, text case-, width- and space-insensitive, text[] the same set of
 * such texts, timestamps the same instant, jsonb the same document whatever its key order.
 * Sources that agree under this raise a value's confidence (src/pipeline/agreement.ts).
 */
export function sameOutputValue(
  type: OutputType,
  a: unknown,
  b: unknown,
  options: SameValueOptions = {},
): boolean {
  switch (type) {
    case "integer":
    case "numeric": {
      if (typeof a !== "number" || typeof b !== "number") return false;
      const tolerance = options.relativeTolerance ?? (type === "integer" ? 0 : 0.001);
      return Math.abs(a - b) <= tolerance * Math.max(Math.abs(a), Math.abs(b));
    }
    case "text":
      return typeof a === "string" && typeof b === "string" && foldText(a) === foldText(b);
    case "text[]": {
      if (!Array.isArray(a) || !Array.isArray(b)) return false;
      const set = (items: unknown[]) =>
        [...new Set(items.map((item) => foldText(String(item))))].sort().join("\u0000");
      return set(a) === set(b);
    }
    case "timestamptz": {
      if (typeof a !== "string" || typeof b !== "string") return false;
      const [x, y] = [Date.parse(a), Date.parse(b)];
      return Number.isFinite(x) ? x === y : a === b;
    }
    case "jsonb":
      return sortedJson(a) === sortedJson(b);
    default:
      return a === b;
  }
}

/** Text as compared: Unicode-compatible forms folded, lower case, runs of space as one. */
export function foldText(text: string): string {
  return text.normalize("NFKC").toLowerCase().replace(/\s+/g, " ").trim();
}

/** jsonb compared by content (jsonb reorders keys); a string holding JSON is read first. */
function sortedJson(value: unknown): string {
  if (typeof value !== "string") return canonicalJson(value);
  try {
    return canonicalJson(JSON.parse(value));
  } catch {
    return value;
  }
}
