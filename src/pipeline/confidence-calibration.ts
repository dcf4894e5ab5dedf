/**
 * Confidence calibration: a mapping from the confidence a stage reported (raw) to how often
 * values reported so were right, learnt by `gleaner eval` against a golden set and applied when a
 * pipeline with `calibrate: true` settles its values (settle-row.ts). Pure: the mapping is read
 * from `<schema>.calibrations` (src/sql/calibrations.ts) once per job.
 */

/** [raw, calibrated] pairs, raw increasing, calibrated non-decreasing. */
export type CalibrationPoints = readonly (readonly [number, number])[];

/** The mappings of one pipeline, by backend (or structured-data origin) and column. */
export interface Calibration {
  /** The calibrated confidence, or undefined when no mapping was learnt for that pair. */
  apply(backend: string, column: string, raw: number): number | undefined;
}

export function calibrationOf(
  mappings: readonly { backend: string; column: string; points: CalibrationPoints }[],
): Calibration {
  const byPair = new Map(mappings.map((m) => [`${m.backend}\u0000${m.column}`, m.points]));
  return {
    apply(backend, column, raw) {
      const points = byPair.get(`${backend}\u0000${column}`);
      return points && points.length > 0 ? interpolate(points, raw) : undefined;
    },
  };
}

/**
 * Linear between the learnt points; outside the range of confidences the eval saw, the nearest
 * learnt value (nothing is known there to do better).
 */
export function interpolate(points: CalibrationPoints, raw: number): number {
  const first = points[0] as readonly [number, number];
  const last = points[points.length - 1] as readonly [number, number];
  if (raw <= first[0]) return first[1];
  if (raw >= last[0]) return last[1];
  for (let i = 1; i < points.length; i++) {
    const [x1, y1] = points[i] as readonly [number, number];
    const [x0, y0] = points[i - 1] as readonly [number, number];
    if (raw <= x1) return round(y0 + ((y1 - y0) * (raw - x0)) / (x1 - x0));
  }
  return last[1];
}

/** One judged value: the confidence it was given and whether it was right. */
export interface CalibrationSample {
  confidence: number;
  correct: boolean;
}

/** Prior weight, in samples, of the model's own claim in a block of few samples. */
const PRIOR_SAMPLES = 2;

/**
 * Isotonic regression (pool adjacent violators) of "right" on the raw confidence. Equal
 * confidences are one block (the mapping is a function); each block's accuracy is shrunk toward
 * its mean confidence by PRIOR_SAMPLES, so three right answers out of three map to a little
 * under 1, not to certainty; the shrunk values are pooled again to stay non-decreasing.
 */
export function fitCalibration(samples: readonly CalibrationSample[]): CalibrationPoints {
  const groups = new Map<number, { n: number; right: number }>();
  for (const s of samples) {
    const g = groups.get(s.confidence) ?? { n: 0, right: 0 };
    g.n++;
    if (s.correct) g.right++;
    groups.set(s.confidence, g);
  }
  const sorted = [...groups.entries()].sort((a, b) => a[0] - b[0]);
  const blocks = pool(sorted.map(([x, g]) => ({ n: g.n, sx: x * g.n, y: g.right / g.n })));
  const shrunk = blocks.map((b) => {
    const meanX = b.sx / b.n;
    return { ...b, y: (b.y * b.n + meanX * PRIOR_SAMPLES) / (b.n + PRIOR_SAMPLES) };
  });
  return pool(shrunk).map((b) => [round(b.sx / b.n), round(b.y)] as const);
}

interface Block {
  n: number;
  /** Sum of the raw confidences. */
  sx: number;
  /** Mean of the target (accuracy). */
  y: number;
}

function pool(input: readonly Block[]): Block[] {
  const out: Block[] = [];
  for (const block of input) {
    let current = { ...block };
    while (out.length > 0 && (out[out.length - 1] as Block).y > current.y) {
      const prev = out.pop() as Block;
      const n = prev.n + current.n;
      current = { n, sx: prev.sx + current.sx, y: (prev.y * prev.n + current.y * current.n) / n };
    }
    out.push(current);
  }
  return out;
}

function round(n: number): number {
  return Math.round(n * 10_000) / 10_000;
}
