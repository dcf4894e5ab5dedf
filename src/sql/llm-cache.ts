import { sql } from "kysely";
import type { Db } from "../db/connect-database.ts";
import type { CachedLlmAnswer, LlmAnswerStore } from "../llm/llm-types.ts";

/**
 * The LLM answer cache in PostgreSQL (<schema>.llm_cache, migrations/000010), shared by every
 * process: src/llm/answer-cache.ts decides what is asked and kept; these are its statements.
 *
 * Why they are safe with any number of processes at once:
 * - `get` is a plain primary-key read. An answer older than the TTL (by the database's clock,
 *   the one every process shares) is ignored even before it is deleted, so a stale answer is
 *   never served however late the pruning runs.
 * - `put` is one upsert on the key. Two processes that asked the same question at once both
 *   paid and both write: the later write wins and its `written_at` restarts the TTL, which is
 *   right, since both answers passed the stage's validation for exactly this question. A row
 *   lock on one key is held for one statement only.
 * - `prune` deletes at most `limit` expired rows, oldest first through the `written_at` index,
 *   and skips rows another statement holds (`for update skip locked`): two processes pruning
 *   at once delete different rows instead of waiting on each other, and a prune never blocks a
 *   `put` of a fresh answer to the same key for longer than its own short statement. A row
 *   refreshed by a `put` after the prune chose it is deleted only if still expired: the delete
 *   re-checks `written_at` on the row version it locks.
 */
export function createLlmAnswerStore(db: Db, schema: string): LlmAnswerStore {
  const table = sql.table(`${schema}.llm_cache`);
  const maxAge = (ms: number) => sql`make_interval(secs => ${ms / 1000})`;
  return {
    async get(key, maxAgeMs) {
      const { rows } = await sql<{
        backend: string;
        model: string;
        answer: string;
        input_tokens: number;
        output_tokens: number;
        cost_usd: number;
      }>`
        select backend, model, answer, input_tokens, output_tokens, cost_usd from ${table}
        where key = ${key} and written_at > now() - ${maxAge(maxAgeMs)}
      `.execute(db);
      const row = rows[0];
      if (!row) return undefined;
      const answer: CachedLlmAnswer = {
        backend: row.backend,
        model: row.model,
        answer: row.answer,
        inputTokens: row.input_tokens,
        outputTokens: row.output_tokens,
        costUsd: row.cost_usd,
      };
      return answer;
    },
    async put(key, answer) {
      await sql`
        insert into ${table} (key, backend, model, answer, input_tokens, output_tokens, cost_usd,
                              written_at)
        values (${key}, ${answer.backend}, ${answer.model}, ${answer.answer},
                ${answer.inputTokens}, ${answer.outputTokens}, ${answer.costUsd}, now())
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
