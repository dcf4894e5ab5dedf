/**
 * How many PostgreSQL connections one Gleaner process may open, derived from its
 * `worker.concurrency`: the one definition used by the pools (src/db/connect-database.ts,
 * src/worker/start-worker.ts), README "Scaling out" and bench/connection-budget.ts.
 *
 * A job holds a connection only for its short statements (start its rows, write their state,
 * the answer cache), never while it waits on an LLM or a page, so the pools need not grow with
 * the number of jobs in flight: a quarter of the concurrency is enough to keep the statements
 * of 16 jobs flowing (measured: bench/throughput.ts, bench/connection-budget.ts). The old
 * sizes (10 and concurrency + 4, 31 per process) let four processes fill a default
 * `max_connections` of 100; these (11 per process at concurrency 16) fit eight.
 */
export interface ConnectionBudget {
  /** Gleaner's own pool: sweeps, stage statements, write-back, heartbeats. */
  main: number;
  /** The scheduler's LISTEN connection (where a sweep runs). */
  listen: number;
  /** graphile-worker's pool: its LISTEN connection, fetching and completing jobs. */
  worker: number;
}

export function connectionBudget(concurrency: number): ConnectionBudget {
  const share = Math.ceil(concurrency / 4);
  return {
    main: Math.min(10, 1 + share),
    listen: 1,
    // One held by graphile-worker's own LISTEN, the rest fetch and complete jobs.
    worker: Math.max(2, 1 + share),
  };
}
