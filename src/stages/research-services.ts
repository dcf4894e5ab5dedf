import type { GleanerConfig, SearchProviderSettings } from "../config/config-types.ts";
import { createBrowserPool } from "../crawl/browser-pool.ts";
import { createPageReader, type PageReader } from "../crawl/page-reader.ts";
import type { Db } from "../db/connect-database.ts";
import { createDomainSlotStore } from "../sql/crawl-domain-slots.ts";
import type { AdaptiveConcurrency } from "../concurrency/adaptive-concurrency.ts";
import type { RuntimeEvents } from "../pipeline/runtime-events.ts";
import { createCachedSearch, type CachedSearchProvider } from "../search/cached-search.ts";
import { createSearchProvider } from "../search/create-search-provider.ts";
import { createSearchCache } from "../search/search-cache.ts";
import {
  SearchError,
  type SearchOptions,
  type SearchProvider,
  type SearchResult,
} from "../search/search-provider.ts";
import type { CallOutcome } from "../concurrency/call-outcome.ts";
import { createConfiguredConcurrency } from "../concurrency/configured-concurrency.ts";
import { searchEndpoint } from "../concurrency/endpoint-key.ts";
import { coerceError } from "../core/coerce-error.ts";
import { systemClock, type Clock } from "../core/clock.ts";
import type { BudgetGuard } from "../budget/budget-guard.ts";
import { withSearchBudget } from "../budget/search-budget.ts";

/**
 * What the web research stages share in one process: the search providers (behind the shared
 * cache) and one page reader (SSRF guard, robots.txt, the per-host limit, page cache, and a
 * browser started only when a page first needs it). Built lazily so pipelines without research
 * stages pay nothing.
 */
export interface ResearchServices {
  search(provider: string): SearchClient;
  /** The one page reader of this process (page-reader.ts): every stage reading pages shares it. */
  pages(): PageReader;
  readonly db: Db;
  readonly schema: string;
  readonly config: GleanerConfig;
  readonly events: RuntimeEvents;
  /** The budget windows' clock: when a refused search may try again. */
  readonly clock: Clock;
  close(): Promise<void>;
}

export interface SearchClient {
  readonly name: string;
  search(query: string, options: SearchOptions): Promise<SearchResult[]>;
  inFlight(): number;
}

export interface ResearchServicesOptions {
  /** Limits for search providers (`search:<name>`), adaptive and shared when configured so. */
  concurrency?: AdaptiveConcurrency;
  /** URL prefixes Gleaner serves itself (its corpus folders), let through the SSRF guard. */
  ownPrefixes?: readonly string[];
  /** The fleet-wide budgets: a provider with a `price` reserves and settles each request. */
  budget?: BudgetGuard;
  clock?: Clock;
}

export function createResearchServices(
  config: GleanerConfig,
  db: Db,
  events: RuntimeEvents,
  options: ResearchServicesOptions = {},
): ResearchServices {
  const searchCache = createSearchCache(db, config.schema);
  const concurrency = options.concurrency ?? createConfiguredConcurrency(config, undefined);
  const clients = new Map<string, SearchClient>();
  let pages: PageReader | undefined;

  const search = (name: string): SearchClient => {
    const known = clients.get(name);
    if (known) return known;
    const settings = config.search.providers.find((p) => p.name === name);
    if (!settings) throw new Error(`search provider "${name}" is not declared in search.providers`);
    const client = buildSearchClient(settings);
    clients.set(name, client);
    return client;
  };

  const buildSearchClient = (settings: SearchProviderSettings): SearchClient => {
    const provider = createSearchProvider(
      {
        provider: settings.provider,
        base_url: settings.baseUrl,
        api_key: settings.apiKey,
        corpus: settings.corpus,
        timeout_ms: settings.timeoutMs,
        limit: settings.limit,
      },
      { db, schema: config.schema, configPath: `search.providers.${settings.name}` },
    );
    const limiter = concurrency.limiter(searchEndpoint(settings.name), {
      min: 1,
      max: settings.maxConcurrency,
    });
    // The limit guards calls to the provider only: cache hits take no slot.
    // Named as configured: the cache key and the results' `provider`, so two providers of one
    // kind (two SearXNG instances) never share answers.
    const limitedCall: SearchProvider = {
      name: settings.name,
      async search(query, searchOptions) {
        const release = await limiter.acquire(searchOptions.signal);
        try {
          const found = await provider.search(query, searchOptions);
          release("success");
          return found.map((r) => ({ ...r, provider: settings.name }));
        } catch (error) {
          release(...searchVerdict(error));
          throw error;
        }
      },
    };
    // Paid requests go through the budget below the cache: a cached search costs nothing.
    const limited =
      settings.price && options.budget
        ? withSearchBudget(limitedCall, settings.price, options.budget)
        : limitedCall;
    const cached: CachedSearchProvider = createCachedSearch(limited, searchCache, {
      ttlMs: config.search.cacheTtlMs,
      onCacheWriteError: (error) =>
        events.emit("research:warning", {
          message: `${error.message}: ${error.cause === undefined ? "" : coerceError(error.cause).message}`,
        }),
      onSearch: (outcome) => events.emit("search:lookup", { provider: settings.name, outcome }),
    });
    return {
      name: settings.name,
      search: (query, searchOptions) => cached.search(query, searchOptions),
      inFlight: () => limiter.inFlight(),
    };
  };

  const getPages = (): PageReader => {
    pages ??= createPageReader({
      ...(config.crawl.userAgent ? { userAgent: config.crawl.userAgent } : {}),
      allow: config.crawl.allow,
      allowPrefixes: options.ownPrefixes ?? [],
      timeoutMs: config.crawl.timeoutMs,
      maxBytes: config.crawl.maxBytes,
      maxRedirects: config.crawl.maxRedirects,
      cacheTtlMs: config.crawl.cacheTtlMs,
      cache: { db, schema: config.schema },
      perHostConcurrency: config.crawl.perHostConcurrency,
      perHostDelayMs: config.crawl.perHostDelayMs,
      // Per-site limits held for the whole fleet in <schema>.crawl_domains, not per process.
      fleet: {
        store: createDomainSlotStore(db, config.schema),
        onStoreError: (error) =>
          events.emit("research:warning", {
            message: `${error.message}: ${coerceError(error.cause).message}`,
          }),
      },
      robots: { enabled: config.crawl.robots },
      browser: (guard) =>
        createBrowserPool({
          size: config.crawl.browser.contexts,
          executablePath: config.crawl.browser.executablePath,
          ...(config.crawl.browser.endpoint ? { endpoint: config.crawl.browser.endpoint } : {}),
          proxyHost: config.crawl.browser.proxyHost,
          guard,
          ...(config.crawl.userAgent ? { userAgent: config.crawl.userAgent } : {}),
          timeoutMs: config.crawl.timeoutMs,
          maxBytes: config.crawl.maxBytes,
        }),
    });
    return pages;
  };

  return {
    search,
    pages: getPages,
    db,
    schema: config.schema,
    config,
    events,
    clock: options.clock ?? systemClock,
    async close() {
      await pages?.close();
      pages = undefined;
    },
  };
}

/** What a failed search says about the provider's load (see call-outcome.ts). */
function searchVerdict(error: unknown): [CallOutcome, number?] {
  if (!(error instanceof SearchError)) return ["neutral"];
  switch (error.errorClass) {
    case "rate_limited":
      return ["overload", error.retryAfterMs];
    case "timeout":
    case "server_error":
    case "connection":
      return ["error"];
    default:
      return ["neutral"];
  }
}
