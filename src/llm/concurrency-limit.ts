// A FIFO counting semaphore. FIFO so a burst of batches cannot starve the oldest waiter, and
// slots are handed over directly on release so a newcomer cannot jump the queue.

export type Release = () => void;

interface Waiter {
  grant: (release: Release) => void;
}

function abortReason(signal: AbortSignal): Error {
  return signal.reason instanceof Error
    ? signal.reason
    : new DOMException("aborted while waiting for a free slot", "AbortError");
}

export class ConcurrencyLimit {
  readonly #max: number;
  #active = 0;
  readonly #queue: Waiter[] = [];

  constructor(max: number) {
    if (!Number.isInteger(max) || max < 1) {
      throw new Error(`concurrency limit must be a positive integer, got ${String(max)}`);
    }
    this.#max = max;
  }

  inFlight(): number {
    return this.#active;
  }

  waiting(): number {
    return this.#queue.length;
  }

  /** Resolves with a release function once a slot is free; rejects if `signal` aborts first. */
  acquire(signal?: AbortSignal): Promise<Release> {
    if (signal?.aborted) return Promise.reject(abortReason(signal));
    if (this.#active < this.#max) {
      this.#active++;
      return Promise.resolve(this.#releaser());
    }
    return new Promise<Release>((resolve, reject) => {
      const onAbort = (): void => {
        const index = this.#queue.indexOf(waiter);
        if (index !== -1) this.#queue.splice(index, 1);
        reject(abortReason(signal as AbortSignal));
      };
      const waiter: Waiter = {
        grant: (release) => {
          signal?.removeEventListener("abort", onAbort);
          resolve(release);
        },
      };
      this.#queue.push(waiter);
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  async run<T>(fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    const release = await this.acquire(signal);
    try {
      return await fn();
    } finally {
      release();
    }
  }

  #releaser(): Release {
    let released = false;
    return () => {
      // Double release would silently raise the limit; make it a no-op instead.
      if (released) return;
      released = true;
      const next = this.#queue.shift();
      if (next) next.grant(this.#releaser());
      else this.#active--;
    };
  }
}
