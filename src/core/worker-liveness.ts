/**
 * When a Gleaner worker process counts as alive: the one definition shared by the heartbeat
 * that writes gleaner.workers, the reaper that gives back dead workers' jobs, the fleet-wide
 * concurrency shares and /metrics.
 */

/** The longest pause between heartbeats, whatever the leases. */
export const HEARTBEAT_INTERVAL_MS = 10_000;
/** A process silent for this many heartbeat intervals is taken for dead. */
export const MISSED_BEATS_FOR_DEAD = 3;
/** Alive for the fleet's shares and /metrics: a heartbeat within 3 of the longest intervals. */
export const ALIVE_WITHIN_MS = MISSED_BEATS_FOR_DEAD * HEARTBEAT_INTERVAL_MS;

/**
 * How often a worker says it is alive: often enough that a dead one is noticed, and its jobs'
 * rows given back, well within the shortest lease (3 beats ≤ half the lease), and at most every
 * 10 s.
 */
export function heartbeatIntervalMs(shortestLeaseMs: number): number {
  return Math.max(250, Math.min(HEARTBEAT_INTERVAL_MS, Math.floor(shortestLeaseMs / 6)));
}
