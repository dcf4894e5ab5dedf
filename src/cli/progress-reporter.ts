import type { DrainProgress } from "../worker/drain.ts";

const BAR_WIDTH = 24;

/**
 * Progress of a long command: on a terminal, one bar per pipeline redrawn in place (rows settled
 * of total, rate, ETA); elsewhere (CI, log files), a plain line every `intervalMs`.
 */
export function createProgressReporter(
  stream: NodeJS.WriteStream = process.stderr,
  options: { intervalMs?: number; now?: () => number } = {},
): { update: (progress: DrainProgress[]) => void; done: () => void } {
  const now = options.now ?? Date.now;
  const tty = stream.isTTY === true;
  const interval = options.intervalMs ?? (tty ? 200 : 5000);
  const started = new Map<string, { at: number; settled: number }>();
  let lastDraw = Number.NEGATIVE_INFINITY;
  let drawnLines = 0;

  const line = (p: DrainProgress): string => {
    const t = now();
    const first = started.get(p.pipeline) ?? { at: t, settled: p.settled };
    if (!started.has(p.pipeline)) started.set(p.pipeline, first);
    const seconds = (t - first.at) / 1000;
    const rate = seconds > 0 ? (p.settled - first.settled) / seconds : 0;
    const left = Math.max(0, p.total - p.settled);
    const eta = rate > 0 ? `ETA ${formatSeconds(left / rate)}` : "ETA –";
    const ratio = p.total === 0 ? 1 : p.settled / p.total;
    const text = `${p.settled}/${p.total} ${(ratio * 100).toFixed(1)}% ${rate.toFixed(1)} rows/s ${eta}`;
    if (!tty)
      return `${p.pipeline}: ${text}${p.inFlight === undefined ? "" : `, ${p.inFlight} in flight`}`;
    const filled = Math.round(ratio * BAR_WIDTH);
    return `${p.pipeline} [${"#".repeat(filled)}${"-".repeat(BAR_WIDTH - filled)}] ${text}`;
  };

  return {
    update(progress) {
      const t = now();
      if (t - lastDraw < interval) return;
      lastDraw = t;
      const lines = progress.map(line);
      if (tty) {
        // Move up over the previous bars and redraw them in place.
        if (drawnLines > 0) stream.write(`\x1b[${drawnLines}A`);
        stream.write(lines.map((l) => `\x1b[2K${l}\n`).join(""));
        drawnLines = lines.length;
      } else {
        stream.write(lines.map((l) => `${l}\n`).join(""));
      }
    },
    done() {
      drawnLines = 0;
    },
  };
}

function formatSeconds(s: number): string {
  if (s < 90) return `${Math.round(s)}s`;
  if (s < 5400) return `${Math.round(s / 60)}m`;
  return `${(s / 3600).toFixed(1)}h`;
}
