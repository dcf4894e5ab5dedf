import type { Clock } from "../core/clock.ts";
import type { GleanerConfig } from "../config/config-types.ts";
import type { Db } from "../db/connect-database.ts";
import { coerceError } from "../core/coerce-error.ts";
import {
  reserveBudget,
  rollUpLedger,
  settleBudgets,
  type BudgetWindow,
  type LedgerLine,
  type Settlement,
} from "../sql/budget-ledger.ts";
import { groupCalls } from "../core/group-calls.ts";
import { BudgetExhaustedError } from "./budget-exhausted-error.ts";
import { budgetWindows, windowBounds } from "./budget-windows.ts";

/** A reservation left by a process that died stops counting after this long. */
export const RESERVATION_TTL_MS = 15 * 60_000;
/** Ledger lines are kept per row this long, then rolled up into one line per day. */
export const LEDGER_RETENTION_MS = 30 * 86_400_000;
/** Each process rolls the ledger up at most this often, after a settle. */
const ROLL_UP_EVERY_MS = 3_600_000;

/** What one paid call is for, and what it is expected to cost. */
export interface PaidCall {
  pipeline: string;
  stage: string;
  rowKeys: readonly string[];
  backend: string;
  model: string;
  estimateUsd: number;
}

/** What a call actually used; `mode` is live, or batch for the Batch API's price. */
export interface CallCharge {
  model?: string;
  inputTokens: number;
  outputTokens: number;
  costUsd: number;
  mode?: string;
}

export interface BudgetGuard {
  /**
   * Reserves `call.estimateUsd` in every window that caps the call's pipeline; throws
   * BudgetExhaustedError when one is full. Returns the function that settles the call's actual
   * cost (and writes its ledger lines); call it exactly once, also when the call failed.
   */
  reserve(call: PaidCall): Promise<(charge: CallCharge) => Promise<void>>;
  /** Records a call made without a reservation (e.g. a Batch API result): ledger and windows. */
  record(call: Omit<PaidCall, "estimateUsd">, charge: CallCharge): Promise<void>;
}

export interface BudgetGuardOptions {
  clock: Clock;
  reservationTtlMs?: number;
  /** Each refusal, for metrics. */
  onRefused?: (pipeline: string, error: BudgetExhaustedError) => void;
  /** The ledger's roll-up failed; calls go on, the next roll-up tries again. */
  onError?: (error: Error) => void;
}

/** The fleet-wide budget of one database: src/sql/budget-ledger.ts does the locking. */
export function createBudgetGuard(
  db: Db,
  config: Pick<GleanerConfig, "schema" | "pipelines" | "llmBudget">,
  options: BudgetGuardOptions,
): BudgetGuard {
  const ttlMs = options.reservationTtlMs ?? RESERVATION_TTL_MS;
  const budgetOf = (pipeline: string) => config.pipelines.find((p) => p.name === pipeline)?.budget;
  let lastRollUp = Number.NEGATIVE_INFINITY;
  const rollUp = async (now: number): Promise<void> => {
    if (now - lastRollUp < ROLL_UP_EVERY_MS) return;
    lastRollUp = now;
    try {
      await rollUpLedger(db, config.schema, { now, retentionMs: LEDGER_RETENTION_MS });
    } catch (error) {
      const cause = coerceError(error);
      options.onError?.(
        new Error(`rolling up the cost ledger failed: ${cause.message}`, { cause }),
      );
    }
  };
  // Every call settles, and a busy worker has dozens in flight: the settlements that arrive
  // while one statement runs go together in the next (each caller waits for its own).
  const settleGrouped = groupCalls<Settlement, void>(
    async (settlements) => {
      await settleBudgets(db, config.schema, settlements);
      return settlements.map(() => undefined);
    },
    { maxInFlight: 1, maxItems: 200 },
  );
  const windowsAt = (pipeline: string, now: number) =>
    budgetWindows(now, pipeline, budgetOf(pipeline), config.llmBudget);

  const settle = async (
    id: string | undefined,
    windows: readonly BudgetWindow[],
    call: Omit<PaidCall, "estimateUsd">,
    charge: CallCharge,
  ): Promise<void> => {
    const used = charge.costUsd > 0 || charge.inputTokens > 0 || charge.outputTokens > 0;
    if (id === undefined && !used) return;
    // One line for the call, naming its rows: a report per row shares it among them.
    const lines: LedgerLine[] = used
      ? [
          {
            pipeline: call.pipeline,
            stage: call.stage,
            backend: call.backend,
            model: charge.model ?? call.model,
            rowKeys: call.rowKeys,
            calls: 1,
            inputTokens: charge.inputTokens,
            outputTokens: charge.outputTokens,
            costUsd: charge.costUsd,
            mode: charge.mode ?? "live",
          },
        ]
      : [];
    await settleGrouped({
      id: id ?? "00000000-0000-0000-0000-000000000000",
      windows,
      actualUsd: charge.costUsd,
      lines,
      at: options.clock.now(),
    });
    await rollUp(options.clock.now());
  };

  return {
    async reserve(call) {
      const now = options.clock.now();
      const windows = windowsAt(call.pipeline, now);
      if (windows.length === 0 || call.estimateUsd <= 0)
        return (charge) => settle(undefined, windows, call, charge);
      const result = await reserveBudget(db, config.schema, {
        windows,
        amountUsd: call.estimateUsd,
        now,
        ttlMs,
      });
      if (!result.ok) {
        const error = new BudgetExhaustedError(
          result.full.scope,
          result.full.kind,
          result.full.capUsd,
          windowBounds(result.full.kind, now).end,
        );
        options.onRefused?.(call.pipeline, error);
        throw error;
      }
      let settled = false;
      return async (charge) => {
        if (settled) return;
        settled = true;
        await settle(result.id, windows, call, charge);
      };
    },
    async record(call, charge) {
      await settle(undefined, windowsAt(call.pipeline, options.clock.now()), call, charge);
    },
  };
}

/**
 * Runs a paid call within the budget: reserve the estimate, call, settle the actual cost (what
 * `usageOf` reads from the result, or `usageOfError` from a failure: a call that failed may
 * still have been billed). Throws BudgetExhaustedError, without calling, when a cap is reached.
 */
export async function withBudget<T>(
  guard: BudgetGuard,
  call: PaidCall,
  run: () => Promise<T>,
  usageOf: (result: T) => CallCharge,
  usageOfError: (error: unknown) => CallCharge | undefined = () => undefined,
): Promise<T> {
  const settle = await guard.reserve(call);
  let result: T;
  try {
    result = await run();
  } catch (error) {
    await settle(usageOfError(error) ?? { inputTokens: 0, outputTokens: 0, costUsd: 0 });
    throw error;
  }
  await settle(usageOf(result));
  return result;
}
