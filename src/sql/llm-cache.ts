import { sql } from "kysely";
import type { Db } from "../db/connect-database.ts";
import type { CachedLlmAnswer, LlmAnswerStore } from "../llm/llm-types.ts";

/**
 * The LLM answer cache in PostgreSQL (<schema>.llm_cache, migrations/000010), shared by every
 * process: src/llm/answer-cache.ts decides what is asked and kept, and gathers the lookups and
 * writes of calls made at the same moment; these are its statements.
 *
 * Why they are safe with any number of processes at once:
 * - `getMany` is a plain primary-key read. An answer older than the TTL (by the database's
 *   clock, the one every process shares) is ignored even before it is deleted, so a stale answer
 *   is never served however late the pruning runs.
 * - `putMany` is one upsert of the batch's keys, each key once (a batch holding a key twice would
 *   make PostgreSQL refuse the statement). Two processes that asked the same question at once
 *   both paid and both write: the later write wins and its `written_at` restarts the TTL, which
 *   is right, since both answers passed the stage's validation for exactly this question. Row
 *   locks on the keys are held for one statement only. It commits without waiting for the disk
 *   (`synchronous_commit` off for this transaction only): an answer lost in a crash is asked
 *   again, which is what a cache may cost, and the job's own writes keep their durability.
 * - `prune` deletes at most `limit` expired rows, oldest first through the `written_at` index,
 *   and skips rows another statement holds (`for update skip locked`): two processes pruning
 *   at once delete different rows instead of waiting on each other, and a prune never blocks a
 *   `putMany` of a fresh answer to the same key for longer than its own short statement. A row
 *   refreshed by a `putMany` after the prune chose it is deleted only if still expired: the
 *   delete re-checks `written_at` on the row version it locks.
 */
export function createLlmAnswerStore(db: Db, schema: string): LlmAnswerStore {
  const table = sql.table(`${schema}.llm_cache`);
  const maxAge = (ms: number) => sql`make_interval(secs => ${ms / 1000})`;
  return {
    async getMany(keys, maxAgeMs) {
      const found = new Map<string, CachedLlmAnswer>();
      if (keys.length === 0) return found;
      const { rows } = await sql<{
        key: string;
        backend: string;
        model: string;
        answer: string;
        input_tokens: number;
        output_tokens: number;
        cost_usd: number;
      }>`
        select key, backend, model, answer, input_tokens, output_tokens, cost_usd from ${table}
        where key = any(${[...new Set(keys)]}::text[])
          and written_at > now() - ${maxAge(maxAgeMs)}
      `.execute(db);
      for (const row of rows)
        found.set(row.key, {
          backend: row.backend,
          model: row.model,
          answer: row.answer,
          inputTokens: row.input_tokens,
          outputTokens: row.output_tokens,
          costUsd: row.cost_usd,
        });
      return found;
    },
    async putMany(entries) {
      const latest = new Map(entries.map((e) => [e.key, e.answer]));
      if (latest.size === 0) return;
      const rows = [...latest].map(([key, a]) => ({
        key,
        backend: a.backend,
        model: a.model,
        answer: a.answer,
        input_tokens: a.inputTokens,
        output_tokens: a.outputTokens,
        cost_usd: a.costUsd,
      }));
      await sql`
        insert into ${table} (key, backend, model, answer, input_tokens, output_tokens, cost_usd,
                              written_at)
        select x.key, x.backend, x.model, x.answer, x.input_tokens, x.output_tokens, x.cost_usd,
               now()
        from jsonb_to_recordset(${JSON.stringify(rows)}::jsonb) as x(key text, backend text,
               model text, answer text, input_tokens integer, output_tokens integer,
               cost_usd double precision),
             (select set_config('synchronous_commit', 'off', true)) as no_wait_for_disk
        on conflict (key) do update
          set backend = excluded.backend, model = excluded.model, answer = excluded.answer,
              input_tokens = excluded.input_tokens, output_tokens = excluded.output_tokens,
              cost_usd = excluded.cost_usd, written_at = excluded.written_at
      `.execute(db);
    },
    async prune(maxAgeMs, limit) {
      const result = await sql`
        delete from ${table} c
        where c.key in (
          select key from ${table}
          where written_at <= now() - ${maxAge(maxAgeMs)}
          order by written_at
          limit ${limit}
          for update skip locked
        )
          and c.written_at <= now() - ${maxAge(maxAgeMs)}
      `.execute(db);
      return Number(result.numAffectedRows ?? 0);
    },
  };
}
