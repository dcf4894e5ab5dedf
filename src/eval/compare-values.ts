import type { ColumnRules } from "../config/config-types.ts";
import type { OutputType } from "../core/output-types.ts";

/**
 * Whether a value Gleaner wrote matches the known one of a golden set, by the column's type
 * (docs/configuration.md, "Evaluate"):
 * - integer, numeric: within `tolerance` (absolute, or "N%" of the known value); default exact
 *   for integers and 1% for numerics;
 * - date, timestamptz: equal down to `precision`, or to what the known value states when it is
 *   written coarser ("2019" matches any day of 2019); default day and second;
 * - text: case-, space- and Unicode-form-insensitive, synonyms (groups from the config) equal;
 * - text[]: the same set of elements, each compared as text;
 * - boolean: true/false, yes/no, t/f, 1/0;
 * - jsonb: the same JSON document (object keys in any order).
 * Known values come from a CSV (text) or a table (typed): both are read.
 */
export function sameValue(
  type: OutputType,
  rules: ColumnRules | undefined,
  actual: unknown,
  known: unknown,
): boolean {
  switch (type) {
    case "integer":
    case "numeric": {
      const a = toNumber(actual);
      const k = toNumber(known);
      if (a === undefined || k === undefined) return false;
      const t = rules?.tolerance ?? {
        amount: type === "integer" ? 0 : 0.01,
        relative: type !== "integer",
      };
      const allowed = t.relative ? Math.abs(k) * t.amount : t.amount;
      return Math.abs(a - k) <= allowed + 1e-9;
    }
    case "date":
    case "timestamptz":
      return sameInstant(type, rules?.precision, actual, known);
    case "text":
      return canonicalText(rules, actual) === canonicalText(rules, known);
    case "text[]": {
      const a = toList(actual).map((v) => canonicalText(rules, v));
      const k = toList(known).map((v) => canonicalText(rules, v));
      return a.length > 0 && new Set(a).size === new Set(k).size && a.every((v) => k.includes(v));
    }
    case "boolean": {
      const a = toBoolean(actual);
      return a !== undefined && a === toBoolean(known);
    }
    case "jsonb":
      return canonicalJson(toJson(actual)) === canonicalJson(toJson(known));
  }
}

/** An empty CSV cell or a NULL: no known value, so the cell is not scored. */
export function isKnown(value: unknown): boolean {
  return (
    value !== null && value !== undefined && !(typeof value === "string" && value.trim() === "")
  );
}

/** Lower case, NFKC, runs of spaces as one, trimmed; then the first word of its synonym group. */
function canonicalText(rules: ColumnRules | undefined, value: unknown): string {
  const text = normalise(String(value));
  for (const group of rules?.synonyms ?? []) {
    if (group.some((word) => normalise(word) === text)) return normalise(group[0] as string);
  }
  return text;
}

function normalise(text: string): string {
  return text.normalize("NFKC").toLowerCase().replace(/\s+/g, " ").trim();
}

function toNumber(value: unknown): number | undefined {
  if (typeof value === "number") return Number.isFinite(value) ? value : undefined;
  if (typeof value !== "string") return undefined;
  const text = value.trim().replace(/[ ,_](?=\d{3}\b)/g, "");
  if (!/^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/.test(text)) return undefined;
  return Number(text);
}

function toBoolean(value: unknown): boolean | undefined {
  if (typeof value === "boolean") return value;
  const text = String(value).trim().toLowerCase();
  if (["true", "t", "yes", "y", "1"].includes(text)) return true;
  if (["false", "f", "no", "n", "0"].includes(text)) return false;
  return undefined;
}

/** An array, a PostgreSQL array literal `{a,b}`, a JSON array, or `a; b` / `a, b` text. */
function toList(value: unknown): unknown[] {
  if (Array.isArray(value)) return value;
  const text = String(value).trim();
  if (text.startsWith("[")) {
    try {
      const parsed: unknown = JSON.parse(text);
      if (Array.isArray(parsed)) return parsed;
    } catch {
      // Not JSON: read as a list of words below.
    }
  }
  const inner = text.startsWith("{") && text.endsWith("}") ? text.slice(1, -1) : text;
  return inner
    .split(inner.includes(";") ? ";" : ",")
    .map((v) => v.trim().replace(/^"(.*)"$/, "$1"))
    .filter((v) => v !== "");
}

function toJson(value: unknown): unknown {
  if (typeof value !== "string") return value;
  try {
    return JSON.parse(value);
  } catch {
    return value;
  }
}

function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v !== null && typeof v === "object" && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}

const PARTS = ["year", "month", "day", "hour", "minute", "second"] as const;
type Part = (typeof PARTS)[number];

/**
 * Dates and instants compared part by part down to the finer of what the known value states
 * and the configured precision. Timestamps are compared in UTC.
 */
function sameInstant(
  type: "date" | "timestamptz",
  precision: Part | undefined,
  actual: unknown,
  known: unknown,
): boolean {
  const k = dateParts(known);
  const a = dateParts(actual);
  if (!k || !a) return false;
  const finest = Math.min(
    PARTS.indexOf(precision ?? (type === "date" ? "day" : "second")),
    k.length - 1,
  );
  for (let i = 0; i <= finest; i++) if (a[i] !== k[i]) return false;
  return true;
}

/** The parts a value states: [year], [year, month], … down to seconds, UTC for instants. */
function dateParts(value: unknown): number[] | undefined {
  if (value instanceof Date) return utcParts(value);
  const text = String(value).trim();
  const partial = /^(\d{4})(?:-(\d{2}))?(?:-(\d{2}))?$/.exec(text);
  if (partial)
    return partial
      .slice(1)
      .filter((p) => p !== undefined)
      .map(Number);
  const time = Date.parse(text);
  return Number.isNaN(time) ? undefined : utcParts(new Date(time));
}

function utcParts(d: Date): number[] {
  return [
    d.getUTCFullYear(),
    d.getUTCMonth() + 1,
    d.getUTCDate(),
    d.getUTCHours(),
    d.getUTCMinutes(),
    d.getUTCSeconds(),
  ];
}
