// The `local` provider: PostgreSQL full-text search over one corpus of search_documents (see
// index-corpus-folder.ts). Offline, free, and the same interface as the hosted providers.
import { sql } from "kysely";
import type { Db } from "../db/connect-database.ts";
import { SearchError, type SearchErrorClass, type SearchProvider } from "./search-provider.ts";
import { checkQuery, effectiveLimit, toSearchResults } from "./search-result-items.ts";

export interface LocalSearchOptions {
  db: Db;
  /** Gleaner's schema (config `schema`), where migrations/000004_search.sql made the table. */
  schema: string;
  corpus: string;
  timeoutMs: number;
  maxResults?: number | undefined;
  /** Defaults to `local:<corpus>`, so two corpora never share cache entries. */
  name?: string | undefined;
}

const LOCAL_MAX_RESULTS = 100;

// Two fragments of about 15-35 words: enough context for `select` to judge a result. No markers
// around matches, because snippets are plain text for every provider.
const HEADLINE_OPTIONS =
  'MaxWords=35, MinWords=15, MaxFragments=2, FragmentDelimiter=" … ", StartSel="", StopSel=""';

export function createLocalSearchProvider(options: LocalSearchOptions): SearchProvider {
  const name = options.name ?? `local:${options.corpus}`;
  const table = sql.table(`${options.schema}.search_documents`);
  return {
    name,
    async search(query, { limit, signal }) {
      checkQuery(name, query);
      const n = effectiveLimit(name, query, limit, options.maxResults, LOCAL_MAX_RESULTS);
      signal?.throwIfAborted();
      let rows: { url: string; title: string | null; snippet: string }[];
      try {
        rows = await options.db.transaction().execute(async (trx) => {
          // The provider timeout, enforced by the server: a query cannot be cancelled from here.
          await sql`select set_config('statement_timeout', ${String(options.timeoutMs)}, true)`.execute(
            trx,
          );
          // websearch_to_tsquery accepts what people type ("quoted phrases", -exclusions, or)
          // and never fails on syntax. Like a web search engine, a document need not hold every
          // word: the words are OR-ed for matching (`loose`), and documents holding them all rank
          // first. The headline is computed in the outer query so only the rows kept by the
          // limit pay for it.
          const result = await sql<{ url: string; title: string | null; snippet: string }>`
            select top.url, top.title, ts_headline('simple', top.body, top.query, ${HEADLINE_OPTIONS}) as snippet
            from (
              select d.id, d.url, d.title, d.body, q.query,
                     (d.tsv @@ q.query)::int + ts_rank_cd(d.tsv, q.loose) as score
              from ${table} d,
                   websearch_to_tsquery('simple', ${query}) as q0(query),
                   lateral (
                     -- An exclusion (-word) must hold for every match: keep AND then.
                     select q0.query,
                            case when strpos(q0.query::text, '!') > 0 then q0.query
                                 else replace(q0.query::text, ' & ', ' | ')::tsquery end
                   ) as q(query, loose)
              where d.corpus = ${options.corpus} and d.tsv @@ q.loose
              order by score desc, d.id
              limit ${n}
            ) top
            order by top.score desc, top.id
          `.execute(trx);
          return result.rows;
        });
      } catch (error) {
        throw databaseFailure(name, query, options.timeoutMs, error);
      }
      // A search that finished after cancellation is not wanted any more.
      signal?.throwIfAborted();
      return toSearchResults(
        name,
        rows.map((r) => ({ title: r.title, url: r.url, snippet: r.snippet })),
        n,
      );
    },
  };
}

function databaseFailure(
  provider: string,
  query: string,
  timeoutMs: number,
  error: unknown,
): SearchError {
  const code = (error as { code?: unknown }).code;
  const message = error instanceof Error ? error.message : String(error);
  let errorClass: SearchErrorClass = "server_error";
  let detail = message;
  if (code === "57014") {
    errorClass = "timeout";
    detail = `no answer within ${timeoutMs} ms`;
  } else if (code === "42P01" || code === "3F000") {
    // No search_documents table: the schema was never migrated; retrying will not create it.
    errorClass = "bad_request";
    detail = `${message}; run \`gleaner migrate\``;
  } else if (typeof code === "string" && /^(ECONN|ENOTFOUND|EAI_|08)/.test(code)) {
    errorClass = "connection";
  }
  return new SearchError(`${provider} search failed: ${detail}`, {
    provider,
    errorClass,
    query,
    cause: error,
  });
}
