import type { Logger } from "pino";
import { coerceError } from "../core/coerce-error.ts";
import { isConnectionError } from "../core/pg-error-codes.ts";

/**
 * For the long-running commands: a promise rejected with a database connection error that
 * nobody awaited (graphile-worker completes jobs without awaiting the completion, and a
 * completion can meet a database that is restarting) must not end the process, whose every part
 * recovers on its own once the database is back. It is logged instead. Any other unhandled
 * rejection is a bug: it is logged and ends the process with exit code 1, as Node would.
 * `onLost` runs for each such lost call (the worker then replaces its job runner). Returns the
 * function that removes the handler.
 */
export function surviveDatabaseOutages(
  logger: Logger,
  onLost: () => void = () => undefined,
): () => void {
  const onRejection = (reason: unknown) => {
    const error = coerceError(reason);
    if (isConnectionError(reason)) {
      logger.warn(`database call failed while the database was unreachable: ${error.message}`);
      onLost();
      return;
    }
    logger.fatal(`unhandled error: ${error.stack ?? error.message}`);
    process.exit(1);
  };
  process.on("unhandledRejection", onRejection);
  return () => process.off("unhandledRejection", onRejection);
}
