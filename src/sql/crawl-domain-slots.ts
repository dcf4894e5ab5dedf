import { sql } from "kysely";
import type {
  DomainSlotStore,
  GiveBackAnswer,
  GiveBackRequest,
  TakeSlotAnswer,
  TakeSlotRequest,
} from "../crawl/domain-slot-store.ts";
import type { Db } from "../db/connect-database.ts";

/**
 * The two statements behind fleet-wide politeness, each one round trip on one row of
 * <schema>.crawl_domains (migration 000016): `take` grants a slot (a lease and a start time) or
 * says why not; `giveBack` removes the lease and records the outcome (breaker, Retry-After).
 *
 * Why they are safe under concurrency:
 * - `take` reads the domain's row `FOR UPDATE` in its first CTE and computes everything from
 *   that locked row: a process arriving while another holds the lock waits, and in READ
 *   COMMITTED `FOR UPDATE` then returns the row as the other committed it (not the statement's
 *   snapshot), so it sees the lease just added and the start time just pushed on. The slots are
 *   in the row itself (a jsonb of lease id → expiry) for exactly this reason: leases in a table of
 *   their own would be counted from the snapshot, and two processes could both see a free slot.
 *   So at most `concurrency` unexpired leases exist, and granted starts are `delay` apart.
 * - `next_slot_at` only moves forward (greatest of now, itself and the pause), so a start is never
 *   granted before one already granted plus the spacing, whatever order processes come in.
 * - A lease expires at its start plus `leaseMs`: a process killed while holding one blocks the
 *   slot only until then; `take` drops expired leases from the row as it goes.
 * - `giveBack` is a single-row UPDATE whose new values are computed from the current row (the
 *   row lock and READ COMMITTED re-evaluation): no failure count, pause or lease removal is lost
 *   to a concurrent one. Removing a lease that already expired and was dropped is a no-op.
 * - Each statement locks one row, so two of them never deadlock.
 * - `prune` deletes only rows idle for `idleMs` that hold nothing a process must respect, and
 *   re-checks that under the row lock (`skip locked`: a row in use is left alone). A take that
 *   finds its row gone inserts it again (a fresh row, which prune leaves alone for `idleMs`).
 * Durations come back relative to the database's now(), so the processes' own clocks never
 * need to agree. now() is the transaction's start, before any wait for the lock, so a granted
 * wait is, if anything, longer than needed: a start is never early.
 */

const MS = sql`interval '1 millisecond'`;
/** Milliseconds from now to `ts`, 0 when it is past (never an infinite interval). */
const msUntil = (ts: ReturnType<typeof sql>) =>
  sql`(extract(epoch from (greatest(${ts}, now()) - now())) * 1000)::float8`;
const nowMs = sql`(extract(epoch from now()) * 1000)`;

export function createDomainSlotStore(db: Db, schema: string): DomainSlotStore {
  const table = sql.table(`${schema}.crawl_domains`);

  async function ensureRow(domain: string): Promise<void> {
    await sql`insert into ${table} (domain) values (${domain}) on conflict (domain) do nothing`.execute(
      db,
    );
  }

  async function takeOnce(r: TakeSlotRequest): Promise<TakeSlotAnswer | undefined> {
    const result = await sql<{
      granted: boolean;
      circuit_open: boolean;
      trial: boolean;
      wait_ms: number;
      paused_for_ms: number;
      open_for_ms: number;
      failures: number;
    }>`
      with d as (
        select * from ${table} where domain = ${r.domain} for update
      ), live as (
        select d.domain, d.next_slot_at, d.paused_until, d.failures, d.open_until, d.trial_lease,
          d.crawl_delay_ms,
          coalesce((select jsonb_object_agg(e.key, e.value) from jsonb_each(d.leases) e
                    where (e.value)::float8 > ${nowMs}), '{}'::jsonb) as leases
        from d
      ), g as (
        select live.*,
          live.failures >= ${r.failureThreshold}::int and (live.open_until > now()
            or (live.trial_lease is not null and live.leases ? live.trial_lease)) as circuit_open,
          greatest(now(), live.next_slot_at, live.paused_until) as start_at,
          greatest(${r.delayMs}::int, coalesce(${r.crawlDelayMs}::int, live.crawl_delay_ms, 0))
            as spacing_ms
        from live
      ), decided as (
        select g.*, not g.circuit_open
          and (select count(*) from jsonb_object_keys(g.leases)) < ${r.concurrency}::int as granted
        from g
      )
      update ${table} t set
        leases = case when decided.granted
          then decided.leases || jsonb_build_object(${r.leaseId}::text,
            extract(epoch from decided.start_at) * 1000 + ${r.leaseMs}::int)
          else decided.leases end,
        next_slot_at = case when decided.granted
          then decided.start_at + decided.spacing_ms * ${MS} else t.next_slot_at end,
        crawl_delay_ms = coalesce(${r.crawlDelayMs}::int, t.crawl_delay_ms),
        trial_lease = case when decided.granted and decided.failures >= ${r.failureThreshold}::int
          then ${r.leaseId}::text else t.trial_lease end,
        updated_at = now()
      from decided
      where t.domain = decided.domain
      returning decided.granted, decided.circuit_open,
        decided.granted and decided.failures >= ${r.failureThreshold}::int as trial,
        ${msUntil(sql`case when decided.granted then decided.start_at else decided.next_slot_at end`)} as wait_ms,
        ${msUntil(sql`decided.paused_until`)} as paused_for_ms,
        ${msUntil(sql`decided.open_until`)} as open_for_ms,
        decided.failures
    `.execute(db);
    const row = result.rows[0];
    if (!row) return undefined;
    return {
      granted: row.granted,
      circuitOpen: row.circuit_open,
      trial: row.trial,
      waitMs: row.wait_ms,
      pausedForMs: row.paused_for_ms,
      openForMs: row.open_for_ms,
      failures: row.failures,
    };
  }

  async function giveBackOnce(r: GiveBackRequest): Promise<GiveBackAnswer | undefined> {
    const result = await sql<{ paused_for_ms: number; open_for_ms: number; failures: number }>`
      update ${table} t set
        leases = case when ${r.leaseId}::text is null then t.leases else t.leases - ${r.leaseId}::text end,
        failures = case ${r.outcome}::text when 'success' then 0
          when 'failure' then t.failures + 1 else t.failures end,
        open_until = case when ${r.outcome}::text = 'failure'
            and t.failures + 1 >= ${r.failureThreshold}::int
          then now() + ${r.coolDownMs}::float8 * ${MS} else t.open_until end,
        trial_lease = case when t.trial_lease = ${r.leaseId}::text then null else t.trial_lease end,
        paused_until = case when ${r.pauseMs}::float8 > 0
          then greatest(t.paused_until, now() + ${r.pauseMs}::float8 * ${MS})
          else t.paused_until end,
        updated_at = now()
      where t.domain = ${r.domain}
      returning ${msUntil(sql`t.paused_until`)} as paused_for_ms,
        ${msUntil(sql`t.open_until`)} as open_for_ms, t.failures
    `.execute(db);
    const row = result.rows[0];
    if (!row) return undefined;
    return { pausedForMs: row.paused_for_ms, openForMs: row.open_for_ms, failures: row.failures };
  }

  return {
    // A domain's first visit ever finds no row: insert it (idempotent) and ask again.
    async take(request) {
      const answer = await takeOnce(request);
      if (answer) return answer;
      await ensureRow(request.domain);
      const retried = await takeOnce(request);
      if (!retried)
        throw new Error(`crawl_domains has no row for ${request.domain} after inserting it`);
      return retried;
    },
    async prune(idleMs, limit) {
      const idle = sql`t.updated_at < now() - ${idleMs} * ${MS}
        and t.leases = '{}'::jsonb and t.trial_lease is null and t.failures = 0
        and t.next_slot_at < now() and t.paused_until < now() and t.open_until < now()`;
      const result = await sql`
        delete from ${table} d
        where d.domain in (
          select t.domain from ${table} t where ${idle}
          order by t.updated_at
          limit ${limit}
          for update skip locked
        )
      `.execute(db);
      return Number(result.numAffectedRows ?? 0);
    },
    async giveBack(request) {
      const answer = await giveBackOnce(request);
      if (answer) return answer;
      await ensureRow(request.domain);
      const retried = await giveBackOnce(request);
      if (!retried)
        throw new Error(`crawl_domains has no row for ${request.domain} after inserting it`);
      return retried;
    },
  };
}
