import { z } from "zod";

/**
 * `pipelines.<p>.eval`: how `gleaner eval` compares a pipeline's values with the known ones of a
 * golden set (src/eval/compare-values.ts). Every key is optional: each output type has a default
 * rule (docs/configuration.md, "Evaluate").
 */
const tolerance = z.union([
  z.number().min(0),
  z.string().regex(/^\d+(\.\d+)?%$/, 'must be a number (absolute) or a percentage such as "5%"'),
]);

const columnRules = z.strictObject({
  /** integer, numeric: how far a value may be from the known one, absolute or "N%" of it. */
  tolerance: tolerance.optional(),
  /** date, timestamptz: the finest part compared; coarser when the known value is written so. */
  precision: z.enum(["year", "month", "day", "hour", "minute", "second"]).optional(),
  /** text, text[]: groups of values that count as the same (after case and spaces). */
  synonyms: z
    .array(z.array(z.string().min(1)).min(2, "a group names at least two values"))
    .default([]),
});

export const evalSchema = z.strictObject({
  /** The default --golden: a CSV file (relative to the config file) or a schema.table. */
  golden: z.string().min(1).optional(),
  /** Comparison rules per output column. */
  columns: z.record(z.string(), columnRules).default({}),
});

export type RawEval = z.output<typeof evalSchema>;
