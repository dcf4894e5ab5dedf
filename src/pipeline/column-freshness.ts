import type { PipelineConfig } from "../config/config-types.ts";
import type { ColumnHistoryEntry, ColumnProvenance, RowState } from "./row-state.ts";

/**
 * Freshness (`outputs.<c>.ttl`) and drift (a newer pipeline version): when a value Gleaner wrote
 * no longer stands, so a new answer replaces it whatever its confidence, and when a row is due
 * again because a value will be too old.
 *
 * A value's age is the time since the stage that found it finished (`columns.<c>.at`). A value a
 * user wrote has no provenance and never expires: Gleaner never replaces it.
 */

/** Earlier values kept per column in `columns.<c>.history`, newest first. */
export const HISTORY_KEPT = 5;

/** When the value expires (ms since the epoch); undefined when it does not. */
export function expiresAt(
  p: Pick<PipelineConfig, "ttlMs">,
  column: string,
  provenance: ColumnProvenance | undefined,
): number | undefined {
  const ttl = p.ttlMs[column];
  if (ttl === undefined || !provenance || provenance.value === null) return undefined;
  const at = Date.parse(provenance.at);
  return Number.isNaN(at) ? undefined : at + ttl;
}

/**
 * Whether a new answer replaces this value even when it is less sure: the value expired, or an
 * older pipeline version found it (the recipe changed, so its answer is the one that counts).
 */
export function isSuperseded(
  p: Pick<PipelineConfig, "ttlMs" | "version">,
  column: string,
  provenance: ColumnProvenance | undefined,
  nowMs: number,
): boolean {
  if (!provenance || provenance.value === null) return false;
  if (provenance.version !== p.version) return true;
  const expiry = expiresAt(p, column, provenance);
  return expiry !== undefined && expiry <= nowMs;
}

/**
 * The stages whose records are not reused because a column they fill expired: a ttl re-run asks
 * them again, while every other stage keeps its record (src/pipeline/stage-reuse.ts).
 */
export function expiredStages(p: PipelineConfig, state: RowState, nowMs: number): Set<string> {
  const expired = new Set<string>();
  if (Object.keys(p.ttlMs).length === 0) return expired;
  for (const stage of p.stages) {
    const stale = stage.outputs.some((column) => {
      const expiry = expiresAt(p, column, state.columns?.[column]);
      return expiry !== undefined && expiry <= nowMs;
    });
    if (stale) expired.add(stage.name);
  }
  return expired;
}

/**
 * Milliseconds until the first value of the row expires, or null when none will. A value that
 * is still expired after a run (its stage was skipped, or found nothing better) is checked again
 * a ttl from now, never at once, so no row loops.
 */
export function msUntilFirstExpiry(
  p: Pick<PipelineConfig, "ttlMs">,
  columns: Readonly<Record<string, ColumnProvenance>>,
  values: Readonly<Record<string, unknown>>,
  nowMs: number,
): number | null {
  let first: number | null = null;
  for (const [column, ttl] of Object.entries(p.ttlMs)) {
    const value = values[column];
    if (value === null || value === undefined) continue;
    const expiry = expiresAt(p, column, columns[column]);
    if (expiry === undefined) continue;
    const wait = expiry > nowMs ? expiry - nowMs : ttl;
    first = first === null ? wait : Math.min(first, wait);
  }
  return first;
}

/**
 * The provenance of a column's new value, carrying the earlier value into its history when the
 * value changed, so a change is visible in plain SQL
 * (`enrichment_state -> 'columns' -> 'employees' -> 'history'`).
 */
export function withHistory(
  previous: ColumnProvenance | undefined,
  next: ColumnProvenance,
): ColumnProvenance {
  const history = previous?.history ?? [];
  if (!previous || previous.value === null || sameValue(previous.value, next.value))
    return history.length > 0 ? { ...next, history } : next;
  const entry: ColumnHistoryEntry = {
    value: previous.value,
    confidence: previous.confidence,
    at: previous.at,
    stage: previous.stage,
    version: previous.version,
    replaced_at: next.at,
    ...(previous.sources ? { sources: previous.sources } : {}),
    ...(previous.origin ? { origin: previous.origin } : {}),
    ...(previous.model ? { model: previous.model } : {}),
  };
  return { ...next, history: [entry, ...history].slice(0, HISTORY_KEPT) };
}

function sameValue(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
