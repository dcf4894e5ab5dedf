/**
 * Time as the parts that wait on it see it: what time it is, and a timer. The system clock in
 * production; tests hand in a clock they move themselves, so a pause of 400 ms is checked by
 * moving the clock 400 ms, not by hoping a loaded machine sleeps exactly that long.
 */
export interface Clock {
  /** Milliseconds since the epoch, as Date.now(). */
  now(): number;
  /** Runs `fn` after `ms`; returns the function that cancels it. Never keeps the process alive. */
  setTimer(fn: () => void, ms: number): () => void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimer(fn, ms) {
    const timer = setTimeout(fn, ms);
    timer.unref();
    return () => clearTimeout(timer);
  },
};
