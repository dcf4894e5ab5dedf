// Answers already paid for, in <schema>.search_cache keyed by provider and normalised query.
// In the database rather than in memory so every worker process and every later run shares them.
import { sql } from "kysely";
import type { Db } from "../db/connect-database.ts";
import type { SearchResult } from "./search-provider.ts";

export interface CachedAnswer {
  results: SearchResult[];
  /** The limit the answer was fetched with (see `servesLimit`). */
  requestedLimit: number;
  fetchedAt: Date;
}

export interface SearchCache {
  /** The answer for this query if it was fetched less than maxAgeMs ago (database clock). */
  get(provider: string, query: string, maxAgeMs: number): Promise<CachedAnswer | undefined>;
  put(
    provider: string,
    query: string,
    results: SearchResult[],
    requestedLimit: number,
  ): Promise<void>;
}

/**
 * The cache key for a query: case and spacing do not change what search engines return, and
 * queries built from row inputs differ in exactly those ("ACME  Corp" vs "Acme Corp").
 */
export function normalizeQuery(query: string): string {
  return query.trim().replace(/\s+/g, " ").toLowerCase();
}

/**
 * Whether an answer fetched with `requestedLimit` can serve a call wanting `limit`: it can when
 * enough was asked, or when the provider returned fewer than asked (it had no more to give).
 */
export function servesLimit(answer: CachedAnswer, limit: number): boolean {
  return answer.requestedLimit >= limit || answer.results.length < answer.requestedLimit;
}

export function createSearchCache(db: Db, schema: string): SearchCache {
  const table = sql.table(`${schema}.search_cache`);
  return {
    async get(provider, query, maxAgeMs) {
      const { rows } = await sql<{ results: unknown; requested_limit: number; fetched_at: Date }>`
        select results, requested_limit, fetched_at from ${table}
        where provider = ${provider} and query = ${normalizeQuery(query)}
          and fetched_at > now() - make_interval(secs => ${maxAgeMs / 1000})
      `.execute(db);
      const row = rows[0];
      // Rows are only written by `put`; a non-array could only come from a hand edit, and the
      // next fetch overwrites it, so it is treated as absent.
      if (!row || !Array.isArray(row.results)) return undefined;
      return {
        results: row.results as SearchResult[],
        requestedLimit: row.requested_limit,
        fetchedAt: row.fetched_at,
      };
    },
    async put(provider, query, results, requestedLimit) {
      await sql`
        insert into ${table} (provider, query, results, requested_limit, fetched_at)
        values (${provider}, ${normalizeQuery(query)}, ${JSON.stringify(results)}::jsonb,
                ${requestedLimit}, now())
        on conflict (provider, query) do update
          set results = excluded.results, requested_limit = excluded.requested_limit,
              fetched_at = excluded.fetched_at
      `.execute(db);
    },
  };
}

/** Drops a provider's cached answers: its corpus changed, so they may name stale documents. */
export async function forgetProviderAnswers(
  db: Db,
  schema: string,
  provider: string,
): Promise<void> {
  await sql`delete from ${sql.table(`${schema}.search_cache`)} where provider = ${provider}`.execute(
    db,
  );
}
