import { Logger as WorkerLogger, type LogFunctionFactory } from "graphile-worker";
import type { Logger } from "pino";

/** graphile-worker's logger, routed into pino. */
export function workerLogger(logger: Logger): WorkerLogger {
  const factory: LogFunctionFactory = (scope) => (logLevel, message, meta) => {
    // LogLevel is a const enum of plain strings, compared as such.
    const level: string = logLevel;
    const line = { ...scope, ...(meta ?? {}) };
    if (level === "error") logger.error(line, message);
    // Gleaner sizes graphile-worker's pool below the concurrency on purpose
    // (src/db/connection-budget.ts): its jobs hold no connection while they wait.
    else if (level === "warning" && message.includes("smaller than concurrency"))
      logger.debug(line, message);
    else if (level === "warning") logger.warn(line, message);
    // graphile-worker's info lines are per job; they belong at debug next to Gleaner's own.
    else logger.debug(line, message);
  };
  return new WorkerLogger(factory);
}
