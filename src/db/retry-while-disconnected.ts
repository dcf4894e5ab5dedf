import { coerceError } from "../core/coerce-error.ts";
import { isConnectionError } from "../core/pg-error-codes.ts";

export interface RetryWhileDisconnectedOptions {
  /** Give up after this long without a connection; the last error is thrown. */
  maxWaitMs: number;
  /**
   * Shortens the wait (shutdown): once it fires, tries go on for at most `afterAbortMs` more,
   * then the last error is thrown.
   */
  signal?: AbortSignal;
  afterAbortMs?: number;
  log?: (message: string) => void;
  /** First pause; it doubles up to maxDelayMs. */
  minDelayMs?: number;
  maxDelayMs?: number;
}

/**
 * Runs a database step, and while the database is unreachable (a restart, a failover, a dropped
 * socket: see isConnectionError) runs it again with backoff instead of failing the work around
 * it. Only for steps that are safe to repeat: a job's fenced writes are (the claim and xmin
 * guards make a repeated or late write match nothing it should not), a plain read is.
 * Any other error is thrown at once.
 */
export async function retryWhileDisconnected<T>(
  what: string,
  step: () => Promise<T>,
  options: RetryWhileDisconnectedOptions,
): Promise<T> {
  const started = Date.now();
  let abortedAt: number | undefined;
  let delay = options.minDelayMs ?? 100;
  const maxDelay = options.maxDelayMs ?? 5000;
  for (let attempt = 1; ; attempt++) {
    try {
      return await step();
    } catch (error) {
      if (!isConnectionError(error)) throw error;
      let deadline = started + options.maxWaitMs;
      if (options.signal?.aborted) {
        abortedAt ??= Date.now();
        deadline = Math.min(deadline, abortedAt + (options.afterAbortMs ?? 0));
      }
      if (Date.now() + delay > deadline) throw error;
      if (attempt === 1)
        options.log?.(
          `${what}: database unreachable (${coerceError(error).message}); retrying for up to ${Math.round(options.maxWaitMs / 1000)} s`,
        );
      // An abort wakes the pause: the shorter deadline then applies at once.
      await pause(
        delay * (0.75 + Math.random() / 2),
        abortedAt === undefined ? options.signal : undefined,
      );
      delay = Math.min(delay * 2, maxDelay);
    }
  }
}

function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}
