import { rungStageName, type RungName } from "../config/escalation-schema.ts";
import type { InstalledPipeline } from "./installed-pipeline.ts";
import type { ColumnProvenance, RowSnapshot, StageRecord, StageValue } from "./row-state.ts";
import type { Calibration } from "./confidence-calibration.ts";
import { isCurrentRecord } from "./stage-reuse.ts";
import { lockedByReview } from "./locked-by-review.ts";
import { evidenceOf } from "./value-evidence-fields.ts";
import { agreeStageOutputs } from "./agree-stage-outputs.ts";
import { isSuperseded, withHistory } from "./column-freshness.ts";

export interface MergedValues {
  values: Record<string, unknown>;
  columns: Record<string, ColumnProvenance>;
  /** Outputs some stage that succeeded as configured answered for (they count for confidence). */
  counted: Set<string>;
}

/**
 * The best value per output among a row's stage records: the stages that succeeded as
 * configured now (a record reused from an earlier run counts), later stages winning ties, then
 * the escalation ladder's rungs, which replace a value only with a more confident one. A value
 * without provenance was written by a user and is never replaced. Skipped stages' outputs do not
 * count. Pure: settle-row.ts settles from it, climb-ladder.ts finds a row's gaps with it.
 */
export function mergeCandidates(
  p: InstalledPipeline,
  row: Pick<RowSnapshot, "values" | "state">,
  stages: Readonly<Record<string, StageRecord>>,
  /** The runtime's clock: a value past its ttl is replaced (src/pipeline/column-freshness.ts). */
  nowMs: number = Date.now(),
  /** `calibrate: true`: the pipeline's learnt confidence mappings (confidence-calibration.ts). */
  calibration?: Calibration,
): MergedValues {
  const columns: Record<string, ColumnProvenance> = { ...row.state.columns };
  const values: Record<string, unknown> = { ...row.values };
  const counted = new Set<string>();
  const steps: Array<{ name: string; outputs: readonly string[]; rung?: RungName }> = [
    ...p.stages.map((s) => ({ name: s.name, outputs: s.outputs })),
    ...(p.escalation?.rungs ?? []).map((rung) => ({
      name: rungStageName(rung),
      outputs: p.escalation?.outputs ?? [],
      rung,
    })),
  ];
  // Stages that answered the same output agree or conflict (agree-stage-outputs.ts); a rung's
  // answer stands alone, since it was asked only because the stages' answer was not good enough.
  const agreed = agreeStageOutputs(p, stages);
  for (const step of steps) {
    const record = stages[step.name];
    if (!record || record.status !== "ok" || !isCurrentRecord(p, step.name, record)) continue;
    for (const name of step.outputs) {
      const candidate = step.rung ? record.output?.[name] : agreed(name, record.output?.[name]);
      // A rung answers only the row's gaps: the outputs it left out are not its to count.
      if (step.rung && !candidate) continue;
      counted.add(name);
      if (!candidate) continue;
      const current = values[name];
      const provenance = columns[name];
      const userWritten = current !== null && current !== undefined && !provenance;
      if (userWritten || lockedByReview(provenance, current)) continue;
      if (candidate.value === null || candidate.value === undefined) {
        if (current === null || current === undefined) {
          const reason = candidate.error ?? "the stage found no value";
          columns[name] =
            step.rung && provenance?.value === null
              ? // The stage's reason stays first; each rung that found nothing either is added.
                { ...provenance, reason: `${provenance.reason ?? ""}; ${step.rung}: ${reason}` }
              : {
                  value: null,
                  confidence: 0,
                  stage: step.name,
                  version: p.version,
                  at: record.finished_at,
                  reason,
                  ...(record.model ? { model: record.model } : {}),
                };
        }
        continue;
      }
      const empty = current === null || current === undefined;
      // A value past its ttl, or one an older pipeline version found: the new answer counts.
      const stale = isSuperseded(p, name, provenance, nowMs);
      const readFromPage = candidate.origin !== undefined && candidate.origin !== "llm";
      const scored = calibrated(calibration, record, candidate, readFromPage, name);
      const better = step.rung
        ? empty || stale || scored.confidence > (provenance?.confidence ?? 0)
        : empty || stale || scored.confidence >= (provenance?.confidence ?? 0);
      if (!better) continue;
      values[name] = candidate.value;
      columns[name] = withHistory(provenance, {
        value: candidate.value,
        ...scored,
        stage: step.name,
        version: p.version,
        at: record.finished_at,
        // A value read from a page's structured data owes nothing to the stage's model.
        ...(record.backend && !readFromPage ? { backend: record.backend } : {}),
        ...(record.model && !readFromPage ? { model: record.model } : {}),
        ...(candidate.sources ? { sources: candidate.sources } : {}),
        ...(candidate.origin ? { origin: candidate.origin } : {}),
        ...evidenceOf(candidate),
        ...(step.rung ? { rung: step.rung, rung_cost_usd: record.usage?.cost_usd ?? 0 } : {}),
      });
    }
  }
  return { values, columns, counted };
}

/**
 * An output's confidence: 0 when NULL, 1 when a user wrote it (no provenance) or a reviewer
 * decided on it, else the confidence of the answer that filled it.
 */
export function outputConfidence(merged: MergedValues, name: string): number {
  const value = merged.values[name];
  const provenance = merged.columns[name];
  // A reviewer's decision is final, a rejection included: nothing left to be unsure of.
  if (lockedByReview(provenance, value)) return 1;
  if (value === null || value === undefined) return 0;
  if (!provenance || provenance.value === null) return 1;
  return provenance.confidence;
}

/**
 * A candidate's confidence through the pipeline's calibration, keyed by the backend that
 * answered (or the structured data it was read from): `confidence` calibrated and
 * `raw_confidence` as the stage reported it; the raw one alone when nothing was learnt.
 */
function calibrated(
  calibration: Calibration | undefined,
  record: StageRecord,
  candidate: StageValue,
  readFromPage: boolean,
  column: string,
): { confidence: number; raw_confidence?: number } {
  const source = readFromPage ? candidate.origin : (record.backend ?? candidate.origin);
  const mapped =
    source === undefined ? undefined : calibration?.apply(source, column, candidate.confidence);
  return mapped === undefined
    ? { confidence: candidate.confidence }
    : { confidence: mapped, raw_confidence: candidate.confidence };
}
