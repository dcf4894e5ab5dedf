/** A job's progress as GET /v1/jobs/:id reports it. */
export interface JobProgress {
  id: string;
  pipeline: string;
  status: "active" | "cancelled";
  created_at: string;
  /** When the first of its rows started (its earliest recorded run); null until one has run. */
  started_at: string | null;
  /** When its last row settled, once the job is finished; null before. */
  completed_at: string | null;
  /** From started_at to completed_at, or to now while it runs; null until a row has run. */
  duration_seconds: number | null;
  total: number;
  done: number;
  failed: number;
  exhausted: number;
  pending: number;
  percent: number;
  rows_per_second: number | null;
  eta_seconds: number | null;
  /** now + eta_seconds: when the job is expected to finish (completed_at once it has). */
  eta_at: string | null;
  finished: boolean;
}

/** When a job's rows ran, from jobStatusCounts (src/sql/job-row-states.ts). */
export interface JobTimes {
  lastSettledAt: Date | null;
  firstStartedAt: Date | null;
}

export function jobProgress(
  job: {
    id: string;
    pipeline: string;
    status: "active" | "cancelled";
    created_at: Date;
    total: number;
  },
  counts: Record<string, number>,
  times: JobTimes,
  now: Date = new Date(),
): JobProgress {
  const { lastSettledAt, firstStartedAt } = times;
  const done = counts.done ?? 0;
  const failed = counts.failed ?? 0;
  const exhausted = counts.exhausted ?? 0;
  const pending = (counts.pending ?? 0) + (counts.queued ?? 0) + (counts.running ?? 0);
  const settled = done + exhausted;
  // Failed rows will be retried: they count as neither settled nor pending-now.
  const finished = pending === 0 && failed === 0;
  const end = finished && lastSettledAt ? lastSettledAt : now;
  const seconds = Math.max(0.001, (end.getTime() - job.created_at.getTime()) / 1000);
  const rate = settled > 0 ? settled / seconds : null;
  const remaining = pending + failed;
  const eta = finished ? 0 : rate ? Math.round(remaining / rate) : null;
  const completedAt = finished ? lastSettledAt : null;
  const durationEnd = completedAt ?? now;
  return {
    id: job.id,
    pipeline: job.pipeline,
    status: job.status,
    created_at: job.created_at.toISOString(),
    started_at: firstStartedAt?.toISOString() ?? null,
    completed_at: completedAt?.toISOString() ?? null,
    duration_seconds: firstStartedAt
      ? Math.max(0, Math.round((durationEnd.getTime() - firstStartedAt.getTime()) / 100) / 10)
      : null,
    total: job.total,
    done,
    failed,
    exhausted,
    pending,
    percent: job.total === 0 ? 100 : Math.round((settled / job.total) * 1000) / 10,
    rows_per_second: rate === null ? null : Math.round(rate * 100) / 100,
    eta_seconds: eta,
    eta_at:
      completedAt?.toISOString() ??
      (eta === null ? null : new Date(now.getTime() + eta * 1000).toISOString()),
    finished,
  };
}
