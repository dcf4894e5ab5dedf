/** A job's progress as GET /v1/jobs/:id reports it. */
export interface JobProgress {
  id: string;
  pipeline: string;
  status: "active" | "cancelled";
  created_at: string;
  total: number;
  done: number;
  failed: number;
  exhausted: number;
  pending: number;
  percent: number;
  rows_per_second: number | null;
  eta_seconds: number | null;
  finished: boolean;
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
  lastSettledAt: Date | null,
  now: Date = new Date(),
): JobProgress {
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
  return {
    id: job.id,
    pipeline: job.pipeline,
    status: job.status,
    created_at: job.created_at.toISOString(),
    total: job.total,
    done,
    failed,
    exhausted,
    pending,
    percent: job.total === 0 ? 100 : Math.round((settled / job.total) * 1000) / 10,
    rows_per_second: rate === null ? null : Math.round(rate * 100) / 100,
    eta_seconds: finished ? 0 : rate ? Math.round(remaining / rate) : null,
    finished,
  };
}
