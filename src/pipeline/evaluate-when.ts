import type { WhenCondition } from "../config/config-schema.ts";

/**
 * Decides whether a stage runs for a row, from the outputs filled by earlier stages and how sure
 * they were: `confidence` holds each output's (see stageInput in run-claimed-batch.ts); an
 * output missing from it counts 0.
 */
export function evaluateWhen(
  when: WhenCondition,
  fields: Record<string, unknown>,
  confidence: Readonly<Record<string, number>> = {},
): boolean {
  if (when.all) return when.all.every((w) => evaluateWhen(w, fields, confidence));
  if (when.any) return when.any.some((w) => evaluateWhen(w, fields, confidence));
  if (when.not) return !evaluateWhen(when.not, fields, confidence);
  const value = fields[when.output as string];
  const isNull = value === null || value === undefined;
  if (when.is_null !== undefined && isNull !== when.is_null) return false;
  if (when.equals !== undefined && value !== when.equals) return false;
  if (when.not_equals !== undefined && value === when.not_equals) return false;
  if (when.in !== undefined && !when.in.some((v) => v === value)) return false;
  if (when.not_in !== undefined && when.not_in.some((v) => v === value)) return false;
  const n = typeof value === "number" ? value : Number.NaN;
  if (when.gt !== undefined && !(n > when.gt)) return false;
  if (when.gte !== undefined && !(n >= when.gte)) return false;
  if (when.lt !== undefined && !(n < when.lt)) return false;
  if (when.lte !== undefined && !(n <= when.lte)) return false;
  if (when.confidence) {
    const c = confidence[when.output as string] ?? 0;
    const t = when.confidence;
    if (t.gt !== undefined && !(c > t.gt)) return false;
    if (t.gte !== undefined && !(c >= t.gte)) return false;
    if (t.lt !== undefined && !(c < t.lt)) return false;
    if (t.lte !== undefined && !(c <= t.lte)) return false;
  }
  return true;
}
