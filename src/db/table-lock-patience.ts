import { setTimeout as sleep } from "node:timers/promises";
import { sql, type Transaction } from "kysely";
import { coerceError } from "../core/coerce-error.ts";
import { PG, pgErrorCode } from "../core/pg-error-codes.ts";
import type { GleanerDatabase } from "./database-types.ts";

/** How long `migrate` waits for a user table's lock, at a time and in all. */
export interface TableLockPatience {
  /** The longest one attempt waits for the lock (`lock_timeout`). */
  timeoutMs: number;
  /** Attempts before giving up. */
  attempts: number;
  /** The pause between two attempts, when the table's other users go ahead. */
  pauseMs: number;
}

/** About a minute in all, two seconds at a time. */
export const DEFAULT_TABLE_LOCK_PATIENCE: TableLockPatience = {
  timeoutMs: 2_000,
  attempts: 15,
  pauseMs: 2_000,
};

/**
 * Sets the transaction's `lock_timeout`, for the lock requests that follow: call it after any
 * advisory lock (waiting for another migrator is not the table's users' problem).
 */
export async function limitLockWait(
  trx: Transaction<GleanerDatabase>,
  patience: TableLockPatience,
): Promise<void> {
  await sql`select set_config('lock_timeout', ${`${patience.timeoutMs}ms`}, true)`.execute(trx);
}

/**
 * Runs `attempt` (a transaction that locks a user's table, after `limitLockWait`) again when the
 * lock was not granted in time, and fails with a clear error after the last attempt.
 *
 * Why: a lock request waiting in PostgreSQL's queue holds up every later request that conflicts
 * with it. An install waiting behind a long report or a transaction left idle would stop the
 * table's writers (and, for an ALTER TABLE, its readers) for as long as it waits. Waiting a
 * little at a time lets them through between attempts; the table is never held by a wait.
 */
export async function withTableLockPatience<T>(
  table: string,
  patience: TableLockPatience,
  attempt: () => Promise<T>,
): Promise<T> {
  for (let tried = 1; ; tried++) {
    try {
      return await attempt();
    } catch (error) {
      if (pgErrorCode(error) !== PG.LOCK_NOT_AVAILABLE) throw error;
      if (tried >= patience.attempts) {
        const cause = coerceError(error);
        throw new Error(
          `could not lock table ${table} to install Gleaner's DDL: other transactions held it through ${patience.attempts} waits of ${patience.timeoutMs} ms (a long query, or a transaction left open: see pg_stat_activity); run gleaner migrate again once they end`,
          { cause },
        );
      }
      await sleep(patience.pauseMs);
    }
  }
}
