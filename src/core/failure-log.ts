import { coerceError } from "./coerce-error.ts";

/**
 * Logs a recurring task's failures once per outage rather than at every tick: the first failure
 * (and a failure with a new message), then one line when it works again. A sweep every second
 * against a database that is restarting would otherwise write a line a second.
 */
export interface FailureLog {
  failed(error: unknown): void;
  succeeded(): void;
}

export function createFailureLog(what: string, log: (message: string) => void): FailureLog {
  let last: string | undefined;
  return {
    failed(error) {
      const message = coerceError(error).message;
      if (message !== last) log(`${what} failed: ${message}`);
      last = message;
    },
    succeeded() {
      if (last !== undefined) log(`${what} works again`);
      last = undefined;
    },
  };
}
