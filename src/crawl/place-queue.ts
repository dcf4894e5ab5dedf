import { coerceError } from "../core/coerce-error.ts";

/**
 * Places in use under a limit, and who waits for one, first come first served: the per-host
 * limit of one process (host-politeness.ts) and the per-site one in front of the fleet's
 * (fleet-politeness.ts).
 */
export interface Places {
  active: number;
  waiters: (() => void)[];
}

/** Takes a place, waiting for one when all `limit` are taken; a waiter that gives up leaves. */
export async function takePlace(
  places: Places,
  limit: number,
  signal: AbortSignal | undefined,
): Promise<void> {
  signal?.throwIfAborted();
  if (places.active < limit) {
    places.active++;
    return;
  }
  // givePlace() hands its place straight to the first waiter, so `active` is not touched here.
  await new Promise<void>((resolve, reject) => {
    const waiter = () => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    };
    const onAbort = () => {
      const index = places.waiters.indexOf(waiter);
      if (index !== -1) places.waiters.splice(index, 1);
      reject(coerceError(signal?.reason));
    };
    places.waiters.push(waiter);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** Gives a place back: to the first waiter if there is one. */
export function givePlace(places: Places): void {
  const next = places.waiters.shift();
  if (next) next();
  else places.active--;
}
