import { LlmError } from "./llm-error.ts";

// Reasoning models served through Ollama/vLLM put their chain of thought inline; it often
// contains braces that would otherwise be mistaken for the answer.
const THINK_BLOCK = /<think>[\s\S]*?<\/think>/gi;
const FENCE = /```[a-zA-Z]*[ \t]*\r?\n?([\s\S]*?)```/g;

function tryParse(text: string): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch {
    // Not JSON is an expected outcome here: the caller tries the next candidate.
    return { ok: false };
  }
}

/** End index (inclusive) of the object starting at `start`, honouring strings; -1 if unbalanced. */
function balancedEnd(text: string, start: number): number {
  let depth = 0;
  let inString = false;
  for (let i = start; i < text.length; i++) {
    const ch = text[i];
    if (inString) {
      if (ch === "\\") i++;
      else if (ch === '"') inString = false;
      continue;
    }
    if (ch === '"') inString = true;
    else if (ch === "{") depth++;
    else if (ch === "}") {
      depth--;
      if (depth === 0) return i;
    }
  }
  return -1;
}

function firstBalancedObject(text: string): { ok: true; value: unknown } | { ok: false } {
  for (let start = text.indexOf("{"); start !== -1; start = text.indexOf("{", start + 1)) {
    const end = balancedEnd(text, start);
    if (end === -1) continue;
    const parsed = tryParse(text.slice(start, end + 1));
    if (parsed.ok) return parsed;
  }
  return { ok: false };
}

/**
 * Pulls the JSON answer out of model text. Backends without structured output wrap JSON in
 * code fences or prose, so we accept bare JSON, a fenced block, or the first balanced object.
 */
export function parseJsonAnswer(text: string): unknown {
  const cleaned = text
    .replace(/^\uFEFF/, "")
    .replace(THINK_BLOCK, "")
    .trim();
  const bare = tryParse(cleaned);
  if (bare.ok) return bare.value;
  for (const match of cleaned.matchAll(FENCE)) {
    const fenced = tryParse((match[1] ?? "").trim());
    if (fenced.ok) return fenced.value;
  }
  const embedded = firstBalancedObject(cleaned);
  if (embedded.ok) return embedded.value;
  const preview = cleaned.length > 200 ? `${cleaned.slice(0, 200)}…` : cleaned;
  throw new LlmError(
    `model answer contains no parseable JSON (${cleaned.length} chars): ${JSON.stringify(preview)}`,
    { errorClass: "invalid_output" },
  );
}
