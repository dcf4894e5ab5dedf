import { agree } from "./agreement.ts";
import type { InstalledPipeline } from "./installed-pipeline.ts";
import type { StageRecord, StageValue } from "./row-state.ts";
import { isCurrentRecord } from "./stage-reuse.ts";

/**
 * Agreement between stages that fill the same output (an `llm` stage and an `extract` stage, two
 * models): settling (settle-row.ts) takes, per output, the most confident answer of the value
 * the stages agree on most (src/pipeline/agreement.ts), with the combined confidence, every
 * source that stated it and the other values as `conflicts`. Returns what settling should see of
 * a stage's candidate: itself when no other stage answered the output, the combined answer for
 * the one that carries the winning value, nothing for the others (they are its support or its
 * conflicts). A null candidate is passed as it is.
 */
export function agreeStageOutputs(
  p: InstalledPipeline,
  stages: Readonly<Record<string, StageRecord>>,
): (output: string, candidate: StageValue | undefined) => StageValue | undefined {
  const combined = new Map<string, { best: StageValue; value: StageValue }>();
  for (const spec of p.outputs) {
    // Later stages first: on a tie the later stage wins, as settling has always done.
    const readings: StageValue[] = [];
    for (const stage of p.stages) {
      const record = stages[stage.name];
      if (!stage.outputs.includes(spec.name) || !record || record.status !== "ok") continue;
      if (!isCurrentRecord(p, stage.name, record)) continue;
      const value = record.output?.[spec.name];
      if (value && value.value !== null && value.value !== undefined) readings.unshift(value);
    }
    if (readings.length < 2) continue;
    const agreed = agree(spec.type, readings);
    if (!agreed) continue;
    // Conflicts found within a stage (pages of one crawl) stay, beside those between stages.
    const conflicts = [...agreed.conflicts, ...(agreed.best.conflicts ?? [])];
    combined.set(spec.name, {
      best: agreed.best,
      value: {
        ...agreed.best,
        confidence: agreed.confidence,
        sources: agreed.sources,
        ...(conflicts.length > 0 ? { conflicts } : {}),
      },
    });
  }
  return (output, candidate) => {
    const found = combined.get(output);
    if (!found || !candidate || candidate.value === null || candidate.value === undefined)
      return candidate;
    return candidate === found.best ? found.value : undefined;
  };
}
