import { coerceError } from "../core/coerce-error.ts";
import {
  checkOutputValue,
  describeValue as describe,
  outputValueSchema as valueSchema,
  type OutputSpec,
  type OutputType,
} from "../core/output-types.ts";
import { LlmError } from "./llm-error.ts";

export interface ValueAnswer {
  value: unknown;
  confidence: number;
  error?: string;
  /** Where the value came from (URLs), when the stage knows. */
  sources?: string[];
}

export type RowAnswer =
  { ok: true; values: Record<string, ValueAnswer> } | { ok: false; error: string };

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

/** Returns the value to store, or an error text. Never coerces between JSON types. */
function checkValue(type: OutputType, value: unknown): { value: unknown } | { error: string } {
  let candidate = value;
  // Strict schemas deliver jsonb as JSON text; json_object / none modes may deliver the value.
  if (type === "jsonb" && typeof value === "string") {
    try {
      candidate = JSON.parse(value) as unknown;
    } catch (err) {
      return {
        error: `expected JSON text, got ${describe(value)} (${coerceError(err).message})`,
      };
    }
  }
  const checked = checkOutputValue(type, candidate);
  return checked.ok ? { value: checked.value } : { error: checked.error };
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

/**
 * Whether a batch answer passed validation whole: every row answered, no value refused. Only
 * such an answer is kept in the answer cache; one with a gap is asked again next time.
 */
export function answerPassed(rows: Iterable<RowAnswer>): boolean {
  for (const row of rows) {
    if (!row.ok) return false;
    if (Object.values(row.values).some((v) => v.error !== undefined)) return false;
  }
  return true;
}
