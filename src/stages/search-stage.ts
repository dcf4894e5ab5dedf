import type { SearchStageConfig } from "../config/config-types.ts";
import { BudgetExhaustedError } from "../budget/budget-exhausted-error.ts";
import { BUDGET_EXHAUSTED } from "../pipeline/row-budget.ts";
import type { UsageRecord } from "../pipeline/row-state.ts";
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
 * calls in flight and keeps answers in the search cache for search.cache_ttl. A paid provider's
 * requests are charged to the row that made them (its usage, the cost ledger); when a budget
 * window refuses one, the row waits as `budget_exhausted` rather than go on with fewer results
 * (the answers it did get are cached, so the retry pays only for the rest).
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
      const usage = new Map<string, UsageRecord>();
      await Promise.all(
        rows.map(async (row) => {
          const planned = stageData(row, config.queriesStage, "queries")?.queries ?? [];
          if (planned.length === 0) {
            // The queries stage was skipped for this row (its `when`): nothing to search.
            results.set(row.key, { ok: true, values: {}, data: { results: [] } });
            return;
          }
          let spent = 0;
          const purpose = {
            pipeline: context.pipeline,
            stage: config.name,
            rowKeys: [row.key],
            onCharge: (usd: number) => (spent += usd),
          };
          const answers = await Promise.all(
            planned.map((q) =>
              client
                .search(q.query, { limit: config.resultsPerQuery, signal: context.signal, purpose })
                .then(
                  (found) => ({ ok: true as const, found }),
                  (error: unknown) => ({ ok: false as const, error }),
                ),
            ),
          );
          if (spent > 0)
            usage.set(row.key, {
              input_tokens: 0,
              output_tokens: 0,
              cost_usd: spent,
              by_backend: {
                [config.provider]: { input_tokens: 0, output_tokens: 0, cost_usd: spent },
              },
            });
          const refused = answers.find(
            (a): a is { ok: false; error: BudgetExhaustedError } =>
              !a.ok && a.error instanceof BudgetExhaustedError,
          );
          if (refused) {
            results.set(row.key, {
              ok: false,
              failure: {
                errorClass: BUDGET_EXHAUSTED,
                message: `${config.provider}: ${refused.error.message}`,
                permanent: false,
                retryAfterMs: Math.max(refused.error.resetAt - services.clock.now(), 0),
              },
            });
            return;
          }
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
        usage,
      };
    },
  };
}
