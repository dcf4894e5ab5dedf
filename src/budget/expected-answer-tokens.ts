/**
 * Tokens an answer is expected to take, before any history exists: a stage's answer is
 * {"rows": [{"id": ..., "<output>": {"value": ..., "confidence": ...}, ...}]}, about 10 tokens of
 * framing per row and 24 per output (key, a short value, the confidence). `gleaner estimate`
 * prefers the ledger's measured average once calls were made; this is the first guess, and the
 * reservation a call makes before it is paid.
 */
export const ROW_FRAMING_TOKENS = 10;
export const OUTPUT_TOKENS = 24;

export function expectedAnswerTokens(schema: Record<string, unknown>, rows: number): number {
  const outputs = Math.max(outputCount(schema), 1);
  return Math.max(rows, 1) * (ROW_FRAMING_TOKENS + OUTPUT_TOKENS * outputs) + 8;
}

function outputCount(schema: Record<string, unknown>): number {
  const rowsProp = (schema.properties as Record<string, unknown> | undefined)?.rows as
    { items?: { properties?: Record<string, unknown> } } | undefined;
  const item = rowsProp?.items?.properties;
  if (item) return Object.keys(item).filter((k) => k !== "id").length;
  const top = schema.properties as Record<string, unknown> | undefined;
  return top ? Object.keys(top).length : 1;
}
