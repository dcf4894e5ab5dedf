import { LlmError } from "./llm-error.ts";
import type { OutputSpec, OutputType } from "./llm-types.ts";

export interface ValueAnswer {
  value: unknown;
  confidence: number;
  error?: string;
  /** Where the value came from (URLs), when the stage knows. */
  sources?: string[];
}

export type RowAnswer =
  { ok: true; values: Record<string, ValueAnswer> } | { ok: false; error: string };

// OpenAI strict mode: every object closed and every property required; "optional" is spelled
// as a nullable type. jsonb travels as JSON text because strict mode has no "any" type.
function valueSchema(type: OutputType): Record<string, unknown> {
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

function checkOutputNames(outputs: OutputSpec[]): void {
  const seen = new Set<string>();
  for (const output of outputs) {
    if (output.name === "id") throw new Error('output name "id" is reserved for the row id');
    if (seen.has(output.name)) throw new Error(`output "${output.name}" is declared twice`);
    seen.add(output.name);
  }
}

/** The JSON Schema of a batch answer: `{ rows: [{ id, <output>: { value, confidence } }] }`. */
export function buildAnswerSchema(outputs: OutputSpec[]): Record<string, unknown> {
  checkOutputNames(outputs);
  const rowProperties: Record<string, unknown> = {
    id: { type: "string", description: "The row id exactly as given in the prompt." },
  };
  for (const output of outputs) {
    rowProperties[output.name] = {
      type: "object",
      description: output.description,
      additionalProperties: false,
      required: ["value", "confidence"],
      properties: {
        value: valueSchema(output.type),
        confidence: {
          type: "number",
          description: "How sure you are of the value, from 0 to 1.",
        },
      },
    };
  }
  return {
    type: "object",
    additionalProperties: false,
    required: ["rows"],
    properties: {
      rows: {
        type: "array",
        items: {
          type: "object",
          additionalProperties: false,
          required: ["id", ...outputs.map((o) => o.name)],
          properties: rowProperties,
        },
      },
    },
  };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Short description of a JSON value for error messages. */
function describe(value: unknown): string {
  if (value === undefined) return "nothing";
  if (value === null) return "null";
  if (Array.isArray(value)) return `an array of ${value.length}`;
  if (typeof value === "object") return "an object";
  const text = JSON.stringify(value);
  const shown = text.length > 40 ? `${text.slice(0, 40)}…` : text;
  return `${typeof value} ${shown}`;
}

function daysInMonth(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

function isRealDate(year: string, month: string, day: string): boolean {
  const y = Number(year);
  const m = Number(month);
  const d = Number(day);
  return m >= 1 && m <= 12 && d >= 1 && d <= daysInMonth(y, m);
}

const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
const TIMESTAMP =
  /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,]\d+)?)?(Z|z|[+-](\d{2})(?::?(\d{2}))?)?)?$/;

// Date.parse accepts 2024-02-30 and rolls it over, so the fields are checked by hand.
function isTimestamp(text: string): boolean {
  const m = TIMESTAMP.exec(text);
  if (!m) return false;
  const [, year, month, day, hour, minute, second, , offsetHour, offsetMinute] = m;
  if (!isRealDate(year ?? "", month ?? "", day ?? "")) return false;
  if (hour !== undefined && Number(hour) > 23) return false;
  if (minute !== undefined && Number(minute) > 59) return false;
  if (second !== undefined && Number(second) > 59) return false;
  if (offsetHour !== undefined && Number(offsetHour) > 15) return false;
  if (offsetMinute !== undefined && Number(offsetMinute) > 59) return false;
  return true;
}

/** Returns the value to store, or an error text. Never coerces between JSON types. */
function checkValue(type: OutputType, value: unknown): { value: unknown } | { error: string } {
  const wrong = (expected: string): { error: string } => ({
    error: `expected ${expected}, got ${describe(value)}`,
  });
  switch (type) {
    case "text":
      return typeof value === "string" ? { value } : wrong("a string");
    case "integer":
      if (typeof value !== "number" || !Number.isInteger(value)) return wrong("an integer");
      // Beyond 2^53 the JSON number has already lost digits; storing it would be silently wrong.
      return Number.isSafeInteger(value) ? { value } : wrong("an integer within ±2^53");
    case "numeric":
      return typeof value === "number" && Number.isFinite(value) ? { value } : wrong("a number");
    case "boolean":
      return typeof value === "boolean" ? { value } : wrong("a boolean");
    case "date": {
      const m = typeof value === "string" ? DATE.exec(value) : null;
      return m && isRealDate(m[1] ?? "", m[2] ?? "", m[3] ?? "")
        ? { value }
        : wrong("a date as YYYY-MM-DD");
    }
    case "timestamptz":
      return typeof value === "string" && isTimestamp(value)
        ? { value }
        : wrong("an ISO 8601 timestamp");
    case "text[]":
      return Array.isArray(value) && value.every((item) => typeof item === "string")
        ? { value }
        : wrong("an array of strings");
    case "jsonb":
      // Strict schemas deliver JSON text; json_object / none modes may deliver the value itself.
      if (typeof value !== "string") return { value };
      try {
        return { value: JSON.parse(value) as unknown };
      } catch (err) {
        return { error: `expected JSON text, got ${describe(value)} (${(err as Error).message})` };
      }
  }
}

function checkOutput(output: OutputSpec, field: unknown): ValueAnswer {
  if (field === undefined) return { value: null, confidence: 0, error: "missing from the answer" };
  if (!isRecord(field) || !("value" in field)) {
    return {
      value: null,
      confidence: 0,
      error: `expected an object {"value", "confidence"}, got ${describe(field)}`,
    };
  }
  const confidence = field["confidence"];
  if (typeof confidence !== "number" || !(confidence >= 0 && confidence <= 1)) {
    return {
      value: null,
      confidence: 0,
      error: `confidence must be a number between 0 and 1, got ${describe(confidence)}`,
    };
  }
  const raw = field["value"];
  if (raw === null) return { value: null, confidence };
  const checked = checkValue(output.type, raw);
  if ("error" in checked) return { value: null, confidence, error: checked.error };
  return { value: checked.value, confidence };
}

function checkRow(row: Record<string, unknown>, outputs: OutputSpec[]): RowAnswer {
  const values: Record<string, ValueAnswer> = {};
  for (const output of outputs) values[output.name] = checkOutput(output, row[output.name]);
  return { ok: true, values };
}

/**
 * Checks a batch answer against the declared outputs. Problems are reported per row and per
 * value so one bad field does not throw away the rest of the batch; only an answer without a
 * `rows` array is rejected as a whole.
 */
export function validateBatchAnswer(
  json: unknown,
  rowIds: string[],
  outputs: OutputSpec[],
): Map<string, RowAnswer> {
  if (!isRecord(json) || !Array.isArray(json["rows"])) {
    throw new LlmError(`answer must be an object with a "rows" array, got ${describe(json)}`, {
      errorClass: "invalid_output",
    });
  }
  const rows = json["rows"] as unknown[];
  const wanted = new Set(rowIds);
  const answered = new Map<string, Record<string, unknown>>();
  const duplicated = new Set<string>();
  for (const entry of rows) {
    if (!isRecord(entry)) continue;
    const rawId = entry["id"];
    // Models sometimes echo numeric-looking ids as numbers; the id is a lookup key, not a value.
    const id = typeof rawId === "string" ? rawId : typeof rawId === "number" ? String(rawId) : null;
    if (id === null || !wanted.has(id)) continue;
    const previous = answered.get(id);
    if (previous === undefined) answered.set(id, entry);
    else if (JSON.stringify(previous) !== JSON.stringify(entry)) duplicated.add(id);
  }
  // A non-object entry carries no id; when the answer has one entry per row we can still tell
  // which row it was meant for, and say so instead of calling the row missing.
  const positional = rows.length === rowIds.length;
  const result = new Map<string, RowAnswer>();
  rowIds.forEach((id, index) => {
    const entry = answered.get(id);
    if (duplicated.has(id)) {
      result.set(id, { ok: false, error: "row answered more than once, with different values" });
    } else if (entry !== undefined) {
      result.set(id, checkRow(entry, outputs));
    } else if (positional && !isRecord(rows[index])) {
      result.set(id, {
        ok: false,
        error: `row answer must be an object, got ${describe(rows[index])}`,
      });
    } else {
      result.set(id, { ok: false, error: "row missing from the answer" });
    }
  });
  return result;
}
