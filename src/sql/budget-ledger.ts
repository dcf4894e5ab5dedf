import { randomUUID } from "node:crypto";
import { sql } from "kysely";
import type { Db } from "../db/connect-database.ts";

/**
 * The budget ledger's statements (migrations/000011): reserve before a paid call, settle after.
 *
 * Why a cap holds with any number of processes:
 * - `reserveBudget` is one short transaction. It creates the window rows it needs (insert … on
 *   conflict do nothing) and locks them `FOR UPDATE`, always in the same order (scope, kind,
 *   window start), so two reservations touching the same windows queue behind each other and can
 *   never deadlock. Holding the locks it reads each window's spent amount and the reservations
 *   still counting (not expired, by the caller's clock), refuses if spent + reserved + estimate
 *   would pass any cap, and otherwise inserts its reservation before committing. Whoever locks
 *   next sees that reservation. So at every moment spent + reserved <= cap, and the cap can only
 *   be passed by calls that cost more than they reserved: at most one call's estimate when
 *   estimates are honest (test/budget.ledger-race.test.ts measures it with 4 processes).
 * - `settleBudgets` deletes the calls' reservations and adds their actual costs to the windows
 *   the reservations were taken in, in one statement, so money is never counted twice nor
 *   dropped. The upsert locks the window rows for one statement, in the same order as reserve.
 *   The ledger lines are inserted by the same statement: what `gleaner cost` reports is exactly
 *   what the windows counted. Settlements arriving together share one statement
 *   (src/budget/budget-guard.ts), so a busy worker writes its ledger in a few round trips.
 * - A process that dies between the two leaves its reservation behind; it stops counting at
 *   `expires_at` and the next reserve of that window deletes it (under the window's lock). A
 *   settle that arrives after that still adds the actual cost: spending is never forgotten.
 * - `rollUpLedger` replaces the lines of whole days older than the retention period (one per
 *   call, or per row before migration 000020) by one line per day, pipeline, stage, backend,
 *   model and mode, in one transaction: a reader sees either the lines or their sum. Lines
 *   still arriving for such a day (a very late settle) are rolled up by the next run.
 */

export type WindowKind = "hour" | "day";

export interface BudgetWindow {
  scope: string;
  kind: WindowKind;
  /** Milliseconds since the epoch. */
  start: number;
  capUsd: number;
}

export interface ReservationRequest {
  windows: readonly BudgetWindow[];
  amountUsd: number;
  /** The caller's clock, ms since the epoch: reservations expired by it no longer count. */
  now: number;
  /** A reservation left by a dead process stops counting after this long. */
  ttlMs: number;
}

export type ReservationResult =
  | { ok: true; id: string }
  | { ok: false; full: BudgetWindow; spentUsd: number; reservedUsd: number };

/**
 * One settled call (or its part at one backend): one line, naming the rows it was for, which
 * share its calls, tokens and cost equally when a report reads them per row.
 */
export interface LedgerLine {
  pipeline: string;
  stage: string;
  backend: string;
  model: string;
  /** The rows the call was for; none for a call made for no row in particular. */
  rowKeys: readonly string[];
  calls: number;
  inputTokens: number;
  outputTokens: number;
  costUsd: number;
  mode: string;
}

const ts = (ms: number) => sql`to_timestamp(${ms / 1000}::double precision)`;

function ordered<W extends BudgetWindow>(windows: readonly W[]): W[] {
  return [...windows].sort(
    (a, b) => a.scope.localeCompare(b.scope) || a.kind.localeCompare(b.kind) || a.start - b.start,
  );
}

export async function reserveBudget(
  db: Db,
  schema: string,
  request: ReservationRequest,
): Promise<ReservationResult> {
  const windows = ordered(request.windows);
  const id = randomUUID();
  if (windows.length === 0) return { ok: true, id };
  const windowTable = sql.table(`${schema}.budget_windows`);
  const reservations = sql.table(`${schema}.budget_reservations`);
  return db.transaction().execute(async (trx) => {
    for (const w of windows) {
      await sql`
        insert into ${windowTable} (scope, kind, window_start)
        values (${w.scope}, ${w.kind}, ${ts(w.start)})
        on conflict do nothing
      `.execute(trx);
    }
    for (const w of windows) {
      const { rows } = await sql<{ spent_usd: number }>`
        select spent_usd from ${windowTable}
        where scope = ${w.scope} and kind = ${w.kind} and window_start = ${ts(w.start)}
        for update
      `.execute(trx);
      await sql`
        delete from ${reservations}
        where scope = ${w.scope} and kind = ${w.kind} and window_start = ${ts(w.start)}
          and expires_at <= ${ts(request.now)}
      `.execute(trx);
      const reserved = await sql<{ total: number | null }>`
        select sum(amount_usd)::double precision as total from ${reservations}
        where scope = ${w.scope} and kind = ${w.kind} and window_start = ${ts(w.start)}
      `.execute(trx);
      const spentUsd = rows[0]?.spent_usd ?? 0;
      const reservedUsd = reserved.rows[0]?.total ?? 0;
      if (spentUsd + reservedUsd + request.amountUsd > w.capUsd) {
        return { ok: false as const, full: w, spentUsd, reservedUsd };
      }
    }
    for (const w of windows) {
      await sql`
        insert into ${reservations} (id, scope, kind, window_start, amount_usd, expires_at)
        values (${id}, ${w.scope}, ${w.kind}, ${ts(w.start)}, ${request.amountUsd},
                ${ts(request.now + request.ttlMs)})
      `.execute(trx);
    }
    return { ok: true as const, id };
  });
}

export interface Settlement {
  id: string;
  windows: readonly BudgetWindow[];
  actualUsd: number;
  lines: readonly LedgerLine[];
  at: number;
}

/**
 * Replaces each settlement's reservation by its actual cost in its windows, and writes its
 * ledger lines: all of them in one statement, so each is applied whole or not at all. The
 * windows' amounts are summed per window first (one statement may not update a row twice) and
 * the rows are upserted in the order `reserveBudget` locks them.
 */
export async function settleBudgets(
  db: Db,
  schema: string,
  settlements: readonly Settlement[],
): Promise<void> {
  const ids = settlements.map((s) => s.id);
  const spent = new Map<string, BudgetWindow & { usd: number }>();
  for (const s of settlements) {
    if (s.actualUsd <= 0) continue;
    for (const w of s.windows) {
      const key = JSON.stringify([w.scope, w.kind, w.start]);
      const seen = spent.get(key);
      if (seen) seen.usd += s.actualUsd;
      else spent.set(key, { ...w, usd: s.actualUsd });
    }
  }
  const windows = ordered([...spent.values()]).map((w, n) => ({
    n,
    scope: w.scope,
    kind: w.kind,
    start_s: w.start / 1000,
    usd: w.usd,
  }));
  const lines = settlements.flatMap((s) =>
    s.lines.map((l) => ({
      at_s: s.at / 1000,
      pipeline: l.pipeline,
      stage: l.stage,
      backend: l.backend,
      model: l.model,
      row_keys: l.rowKeys.length > 0 ? l.rowKeys : null,
      calls: l.calls,
      input_tokens: l.inputTokens,
      output_tokens: l.outputTokens,
      cost_usd: l.costUsd,
      mode: l.mode,
    })),
  );
  await sql`
    with gone as (
      delete from ${sql.table(`${schema}.budget_reservations`)} where id = any(${ids}::uuid[])
    ), spent as (
      insert into ${sql.table(`${schema}.budget_windows`)} as t
        (scope, kind, window_start, spent_usd)
      select w.scope, w.kind, to_timestamp(w.start_s), w.usd
      from jsonb_to_recordset(${JSON.stringify(windows)}::jsonb)
        as w(n integer, scope text, kind text, start_s double precision, usd double precision)
      order by w.n
      on conflict (scope, kind, window_start)
      do update set spent_usd = t.spent_usd + excluded.spent_usd
    )
    insert into ${sql.table(`${schema}.cost_ledger`)}
      (at, pipeline, stage, backend, model, row_keys, calls, input_tokens, output_tokens,
       cost_usd, mode)
    select to_timestamp(l.at_s), l.pipeline, l.stage, l.backend, l.model, l.row_keys, l.calls,
           l.input_tokens, l.output_tokens, l.cost_usd, l.mode
    from jsonb_to_recordset(${JSON.stringify(lines)}::jsonb) as l(at_s double precision,
           pipeline text, stage text, backend text, model text, row_keys text[],
           calls double precision, input_tokens double precision,
           output_tokens double precision, cost_usd double precision, mode text)
  `.execute(db);
}

/** What `windows` have spent and have reserved now (for metrics and `gleaner cost`). */
export async function readBudgetWindows(
  db: Db,
  schema: string,
  windows: readonly BudgetWindow[],
  now: number,
): Promise<{ window: BudgetWindow; spentUsd: number; reservedUsd: number }[]> {
  const out = [];
  for (const w of windows) {
    const { rows } = await sql<{ spent: number | null; reserved: number | null }>`
      select
        (select spent_usd from ${sql.table(`${schema}.budget_windows`)}
          where scope = ${w.scope} and kind = ${w.kind} and window_start = ${ts(w.start)}) as spent,
        (select sum(amount_usd)::double precision from ${sql.table(`${schema}.budget_reservations`)}
          where scope = ${w.scope} and kind = ${w.kind} and window_start = ${ts(w.start)}
            and expires_at > ${ts(now)}) as reserved
    `.execute(db);
    out.push({ window: w, spentUsd: rows[0]?.spent ?? 0, reservedUsd: rows[0]?.reserved ?? 0 });
  }
  return out;
}

/**
 * Rolls up ledger lines of days ended more than `retentionMs` before `now` into one line per
 * day, pipeline, stage, backend, model and mode; drops budget windows older than that too.
 * Returns the number of lines it replaced.
 */
export async function rollUpLedger(
  db: Db,
  schema: string,
  options: { now: number; retentionMs: number },
): Promise<number> {
  const ledger = sql.table(`${schema}.cost_ledger`);
  const before = ts(options.now - options.retentionMs);
  return db.transaction().execute(async (trx) => {
    const { rows } = await sql<{ n: string }>`
      with gone as (
        delete from ${ledger}
        where not rolled_up and at < date_trunc('day', ${before}, 'UTC')
        returning at, pipeline, stage, backend, model, mode, calls, input_tokens, output_tokens, cost_usd
      ), summed as (
        insert into ${ledger}
          (at, pipeline, stage, backend, model, row_key, calls, input_tokens, output_tokens,
           cost_usd, mode, rolled_up)
        select date_trunc('day', at, 'UTC'), pipeline, stage, backend, model, null, sum(calls),
               sum(input_tokens), sum(output_tokens), sum(cost_usd), mode, true
        from gone group by 1, 2, 3, 4, 5, mode
      )
      select count(*)::text as n from gone
    `.execute(trx);
    await sql`
      delete from ${sql.table(`${schema}.budget_windows`)} where window_start < ${before} - interval '1 day'
    `.execute(trx);
    return Number(rows[0]?.n ?? 0);
  });
}
