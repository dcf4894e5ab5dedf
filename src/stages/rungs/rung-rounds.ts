import type { LlmAttempt } from "../../llm/llm-types.ts";
import { addUsage, type StageValue, type UsageRecord } from "../../pipeline/row-state.ts";
import type { StageChunkResult, StageInputRow, StageRowResult } from "../stage-runner.ts";

/**
 * What the rounds of one rung found (search_more's query rounds, stronger_model's backends):
 * per row the most confident value per column, the rows that failed, and every call with its
 * usage, folded into the one result the stage machine records.
 */
export interface RungRounds {
  add(result: StageChunkResult): void;
  /** The gaps of a row still missing or unsure after the rounds so far. */
  missing(row: StageInputRow, gaps: readonly string[]): string[];
  failed(key: string): boolean;
  result(rows: readonly StageInputRow[], dataOf: (row: StageInputRow) => unknown): StageChunkResult;
}

export function rungRounds(rows: readonly StageInputRow[], minConfidence: number): RungRounds {
  const values = new Map<string, Record<string, StageValue>>(rows.map((r) => [r.key, {}]));
  const failed = new Map<string, StageRowResult>();
  const usage = new Map<string, UsageRecord>();
  let calls: LlmAttempt[] = [];
  let backend: string | undefined;
  let model: string | undefined;
  return {
    add(result) {
      calls = [...calls, ...result.calls];
      backend = result.backend ?? backend;
      model = result.model ?? model;
      for (const [key, u] of result.usage) usage.set(key, addUsage(usage.get(key), u));
      for (const [key, got] of result.rows) {
        if (!got.ok) {
          failed.set(key, got);
          continue;
        }
        const found = values.get(key) as Record<string, StageValue>;
        // A later round replaces a value only with a more confident one.
        for (const [column, v] of Object.entries(got.values))
          if (!found[column] || v.confidence > found[column].confidence) found[column] = v;
      }
    },
    missing(row, gaps) {
      return gaps.filter((g) => {
        const v = values.get(row.key)?.[g];
        return !v || v.value === null || v.confidence < minConfidence;
      });
    },
    failed: (key) => failed.has(key),
    result(all, dataOf) {
      const out = new Map<string, StageRowResult>();
      for (const row of all)
        out.set(
          row.key,
          failed.get(row.key) ?? {
            ok: true,
            values: values.get(row.key) as Record<string, StageValue>,
            data: dataOf(row),
          },
        );
      return {
        rows: out,
        calls,
        usage,
        ...(backend ? { backend } : {}),
        ...(model ? { model } : {}),
      };
    },
  };
}
