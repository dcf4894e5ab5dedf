import type { SearchStageConfig } from "../config/config-types.ts";
import { SearchError } from "../search/search-provider.ts";
import type { ResearchServices } from "./research-services.ts";
import type {
  StageChunkResult,
  StageContext,
  StageInputRow,
  StageRowResult,
  StageRunner,
} from "./stage-runner.ts";
import { stageData } from "./stage-data.ts";

/** What a `search` stage keeps in the row's state: the merged results of the row's queries. */
export interface SearchData {
  results: FoundResult[];
  /** Queries that failed while others answered. */
  errors?: Array<{ query: string; class: string; message: string }>;
}

export interface FoundResult {
  url: string;
  title: string;
  snippet: string;
  /** Best rank over the queries that found it. */
  rank: number;
  /** The queries (by index in the queries stage's list) that found it, best first. */
  queries: number[];
  provider: string;
}

/**
 * Runs each row's queries against one provider and merges the answers by URL. Identical queries
 * (of this chunk, of other rows, of earlier runs) are answered once: the provider client shares
 * calls in flight and keeps answers in the search cache for search.cache_ttl.
 */
export function createSearchStage(
  config: SearchStageConfig,
  services: ResearchServices,
): StageRunner {
  return {
    config,
    async run(rows: readonly StageInputRow[], context: StageContext): Promise<StageChunkResult> {
      const client = services.search(config.provider);
      const results = new Map<string, StageRowResult>();
      await Promise.all(
        rows.map(async (row) => {
          const planned = stageData(row, config.queriesStage, "queries")?.queries ?? [];
          if (planned.length === 0) {
            // The queries stage was skipped for this row (its `when`): nothing to search.
            results.set(row.key, { ok: true, values: {}, data: { results: [] } });
            return;
          }
          const answers = await Promise.all(
            planned.map((q) =>
              client
                .search(q.query, { limit: config.resultsPerQuery, signal: context.signal })
                .then(
                  (found) => ({ ok: true as const, found }),
                  (error: unknown) => ({ ok: false as const, error }),
                ),
            ),
          );
          const merged = new Map<string, FoundResult>();
          const errors: NonNullable<SearchData["errors"]> = [];
          let firstError: SearchError | undefined;
          answers.forEach((answer, index) => {
            if (!answer.ok) {
              if (context.signal.aborted) throw answer.error;
              const error = answer.error;
              if (!(error instanceof SearchError)) throw error;
              firstError ??= error;
              errors.push({
                query: planned[index]?.query ?? "",
                class: error.errorClass,
                message: error.message,
              });
              return;
            }
            for (const r of answer.found) {
              const seen = merged.get(r.url);
              if (seen) {
                seen.rank = Math.min(seen.rank, r.rank);
                seen.queries.push(index);
              } else {
                merged.set(r.url, {
                  url: r.url,
                  title: r.title,
                  snippet: r.snippet,
                  rank: r.rank,
                  queries: [index],
                  provider: r.provider,
                });
              }
            }
          });
          if (firstError && errors.length === planned.length) {
            results.set(row.key, {
              ok: false,
              failure: {
                errorClass: `search_${firstError.errorClass}`,
                message: `${config.provider}: ${firstError.message}`,
                permanent: firstError.permanent,
                ...(firstError.retryAfterMs === undefined
                  ? {}
                  : { retryAfterMs: firstError.retryAfterMs }),
              },
            });
            return;
          }
          // Results found by several queries first, then by their best rank.
          const ordered = [...merged.values()].sort(
            (a, b) => b.queries.length - a.queries.length || a.rank - b.rank,
          );
          const data: SearchData = { results: ordered, ...(errors.length ? { errors } : {}) };
          results.set(row.key, { ok: true, values: {}, data });
        }),
      );
      return {
        rows: results,
        calls: [],
        usage: new Map(),
      };
    },
  };
}
