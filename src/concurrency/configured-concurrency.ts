import type { GleanerConfig } from "../config/config-types.ts";
import type { Db } from "../db/connect-database.ts";
import { createAdaptiveConcurrency, type AdaptiveConcurrency } from "./adaptive-concurrency.ts";

/**
 * The registry the config asks for: shared through `db` when `concurrency.shared` is on and a
 * database is given, process-local otherwise.
 */
export function createConfiguredConcurrency(
  config: GleanerConfig,
  db: Db | undefined,
  log?: (message: string) => void,
): AdaptiveConcurrency {
  return createAdaptiveConcurrency({
    db: config.concurrency.shared ? db : undefined,
    schema: config.schema,
    syncIntervalMs: config.concurrency.syncIntervalMs,
    increaseAbove: config.concurrency.increaseAbove,
    decreaseFactor: config.concurrency.decreaseFactor,
    log,
  });
}
