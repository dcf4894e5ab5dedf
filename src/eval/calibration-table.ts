import type { CalibrationSample } from "../pipeline/confidence-calibration.ts";

/** One confidence bucket: [from, to), the last one closed at 1. */
export interface ConfidenceBucket {
  from: number;
  to: number;
  cells: number;
  /** Mean confidence of the cells in it; null when empty. */
  confidence: number | null;
  /** Share of them that were right; null when empty. */
  accuracy: number | null;
}

const BUCKETS = 10;

/** Accuracy by confidence, in ten buckets of 0.1. */
export function confidenceBuckets(samples: readonly CalibrationSample[]): ConfidenceBucket[] {
  const buckets = Array.from({ length: BUCKETS }, (_, i) => ({
    from: i / BUCKETS,
    to: (i + 1) / BUCKETS,
    n: 0,
    sum: 0,
    right: 0,
  }));
  for (const s of samples) {
    const b = buckets[Math.min(BUCKETS - 1, Math.max(0, Math.floor(s.confidence * BUCKETS)))];
    if (!b) continue;
    b.n++;
    b.sum += s.confidence;
    if (s.correct) b.right++;
  }
  return buckets.map((b) => ({
    from: b.from,
    to: b.to,
    cells: b.n,
    confidence: b.n === 0 ? null : round(b.sum / b.n),
    accuracy: b.n === 0 ? null : round(b.right / b.n),
  }));
}

/**
 * Expected calibration error: over the buckets, the gap between mean confidence and accuracy,
 * weighted by the bucket's share of the cells. 0 is perfectly calibrated; a model that says 0.9
 * and is right half the time scores 0.4. Null with no cells.
 */
export function expectedCalibrationError(samples: readonly CalibrationSample[]): number | null {
  if (samples.length === 0) return null;
  let ece = 0;
  for (const b of confidenceBuckets(samples)) {
    if (b.cells === 0) continue;
    ece += (b.cells / samples.length) * Math.abs((b.accuracy ?? 0) - (b.confidence ?? 0));
  }
  return round(ece);
}

function round(n: number): number {
  return Math.round(n * 10_000) / 10_000;
}
