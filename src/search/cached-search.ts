// Wraps any provider with the shared cache and in-process deduplication, so reprocessing rows
// and rows that share a query (same company, same template) pay for a search once.
import { normalizeQuery, servesLimit, type SearchCache } from "./search-cache.ts";
import type { SearchOptions, SearchProvider, SearchResult } from "./search-provider.ts";
import { coerceError } from "../core/coerce-error.ts";

export interface CachedSearchOptions {
  /** How long an answer is served from the cache before the provider is asked again. */
  ttlMs: number;
  /**
   * A failed cache write after a successful call: the results are still returned (they were
   * paid for), and this hook decides how to report it (a log line, a metric).
   */
  onCacheWriteError: (error: Error) => void;
  /** Each search as it is answered: from the cache, by a call, by joining one in flight, or failed. */
  onSearch?: (outcome: "hit" | "call" | "shared" | "error") => void;
}

export interface CachedSearchStats {
  /** Calls made to the wrapped provider (successful or not). */
  calls: number;
  /** Searches answered from the cache table. */
  cacheHits: number;
  /** Searches that joined an identical search already in flight in this process. */
  sharedInFlight: number;
  /** Provider calls that failed (failures are never cached). */
  failures: number;
  cacheWriteErrors: number;
}

export interface CachedSearchProvider extends SearchProvider {
  stats(): CachedSearchStats;
}

export function createCachedSearch(
  provider: SearchProvider,
  cache: SearchCache,
  options: CachedSearchOptions,
): CachedSearchProvider {
  const counters: CachedSearchStats = {
    calls: 0,
    cacheHits: 0,
    sharedInFlight: 0,
    failures: 0,
    cacheWriteErrors: 0,
  };
  const inFlight = new Map<string, Promise<SearchResult[]>>();

  async function lookup(
    query: string,
    limit: number,
    purpose: SearchOptions["purpose"],
  ): Promise<SearchResult[]> {
    let cached;
    try {
      cached = await cache.get(provider.name, query, options.ttlMs);
    } catch (error) {
      throw new Error(`${provider.name} search: reading the search cache failed`, { cause: error });
    }
    if (cached && servesLimit(cached, limit)) {
      counters.cacheHits++;
      options.onSearch?.("hit");
      return cached.results.slice(0, limit);
    }
    counters.calls++;
    let results: SearchResult[];
    try {
      // No caller signal here: the call is shared, and one caller giving up must not cancel it
      // for the others. The provider's own timeout still bounds it. A paid call is charged to
      // the caller that made it; those who join it pay nothing.
      results = await provider.search(query, { limit, ...(purpose ? { purpose } : {}) });
    } catch (error) {
      counters.failures++;
      options.onSearch?.("error");
      throw error;
    }
    options.onSearch?.("call");
    try {
      await cache.put(provider.name, query, results, limit);
    } catch (error) {
      counters.cacheWriteErrors++;
      options.onCacheWriteError(
        new Error(`${provider.name} search: writing the search cache failed`, { cause: error }),
      );
    }
    return results;
  }

  return {
    name: provider.name,
    search(query: string, { limit, signal, purpose }: SearchOptions): Promise<SearchResult[]> {
      if (signal?.aborted) return Promise.reject(coerceError(signal.reason));
      // The whole lookup (cache read, call, cache write) is shared, so concurrent identical
      // queries also share the cache miss instead of each finding it and calling.
      const key = `${normalizeQuery(query)}\u0000${limit}`;
      let shared = inFlight.get(key);
      if (shared) {
        counters.sharedInFlight++;
        options.onSearch?.("shared");
      } else {
        shared = lookup(query, limit, purpose).finally(() => inFlight.delete(key));
        inFlight.set(key, shared);
      }
      return withSignal(shared, signal);
    },
    stats: () => ({ ...counters }),
  };
}

/** Lets one caller stop waiting for a shared call without cancelling it for the others. */
function withSignal<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(coerceError(signal.reason));
    signal.addEventListener("abort", onAbort, { once: true });
    // Attaching both handlers also keeps the shared promise handled when every caller gave up.
    promise.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (error: Error) => {
        signal.removeEventListener("abort", onAbort);
        reject(error);
      },
    );
  });
}
