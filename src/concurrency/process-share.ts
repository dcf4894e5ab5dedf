/**
 * The part of a fleet-wide limit one process may use: the limit divided by the live processes,
 * rounded down, so the shares never add up to more than the limit (rounding up would: a limit
 * of 5 over 4 processes would let 8 calls out). Rounding down wastes at most processes - 1 slots.
 *
 * Never below 1: a process with no share could not make progress on the rows its jobs hold.
 * So when the limit is below the number of processes, the fleet sends up to one call per process,
 * which is the one case where the shares exceed the limit; keep max_concurrency at or above the
 * number of workers.
 */
export function processShare(globalLimit: number, processes: number): number {
  return Math.max(1, Math.floor(globalLimit / Math.max(1, processes)));
}
