import type { Db } from "../db/connect-database.ts";
import { CrawlError } from "./crawl-error.ts";
import { DEFAULT_USER_AGENT, fetchPage, type FetchPageOptions } from "./fetch-page.ts";
import { createHostPoliteness, type HostPolitenessOptions } from "./host-politeness.ts";
import { getCachedPage, putCachedPage, touchCachedPage, type CachedPage } from "./page-cache.ts";
import { createRobotsCache, type RobotsCache } from "./robots-cache.ts";
import { createSsrfGuard, parseHttpUrl, type Resolver, type SsrfGuard } from "./ssrf-guard.ts";

/**
 * The crawl stage's fetch path: SSRF guard → page cache → robots.txt → host politeness →
 * fetch-page. Every page the stages see comes through here, so every safety rule holds for all.
 */

export interface CrawlerOptions {
  userAgent?: string;
  /** `crawl.allow`: hostnames and CIDR ranges the SSRF guard lets through. */
  allow?: readonly string[];
  /** URL prefixes let through the guard (Gleaner's own corpus folders, ssrf-guard.ts). */
  allowPrefixes?: readonly string[];
  timeoutMs?: number;
  /** All redirect hops of one fetch together. Default 2 × timeoutMs. */
  deadlineMs?: number;
  maxBytes?: number;
  maxRedirects?: number;
  /** Page cache freshness; 0 (or no `cache`) turns the cache off. */
  cacheTtlMs?: number;
  cache?: { db: Db; schema: string };
  perHostConcurrency?: number;
  perHostDelayMs?: number;
  circuit?: Pick<HostPolitenessOptions, "failureThreshold" | "coolDownMs">;
  robots?: { enabled?: boolean; ttlMs?: number; unreachableTtlMs?: number };
  /** Tests inject one so no real DNS is asked. */
  resolver?: Resolver;
}

export interface CrawledPage extends CachedPage {
  /** Served from the page cache without a request (fresh) or after a 304. */
  cache: "miss" | "hit" | "revalidated";
  redirects: string[];
  durationMs: number;
}

export interface Crawler {
  fetch(url: string): Promise<CrawledPage>;
  readonly guard: SsrfGuard;
  readonly robots: RobotsCache;
  close(): Promise<void>;
}

export function createCrawler(options: CrawlerOptions = {}): Crawler {
  const userAgent = options.userAgent ?? DEFAULT_USER_AGENT;
  const perHostConcurrency = options.perHostConcurrency ?? 2;
  const guard = createSsrfGuard(
    {
      allow: options.allow ?? [],
      allowPrefixes: options.allowPrefixes ?? [],
      ...(options.resolver ? { resolver: options.resolver } : {}),
    },
    { connections: perHostConcurrency },
  );
  const baseFetch: FetchPageOptions = {
    dispatcher: guard.dispatcher,
    guard,
    userAgent,
    timeoutMs: options.timeoutMs ?? 15_000,
    deadlineMs: options.deadlineMs ?? (options.timeoutMs ?? 15_000) * 2,
    maxBytes: options.maxBytes ?? 5 * 1024 * 1024,
    maxRedirects: options.maxRedirects ?? 5,
  };
  const robotsEnabled = options.robots?.enabled ?? true;
  const robots = createRobotsCache({
    userAgent,
    // Google reads at most 500 KiB of robots.txt; the rest is ignored, so do not fetch more.
    fetchText: async (robotsUrl) => {
      const outcome = await fetchPage(robotsUrl, { ...baseFetch, maxBytes: 512 * 1024 });
      return outcome.kind === "page" ? outcome.body : "";
    },
    ...(options.robots?.ttlMs !== undefined ? { ttlMs: options.robots.ttlMs } : {}),
    ...(options.robots?.unreachableTtlMs !== undefined
      ? { unreachableTtlMs: options.robots.unreachableTtlMs }
      : {}),
  });
  const politeness = createHostPoliteness({
    concurrency: perHostConcurrency,
    delayMs: options.perHostDelayMs ?? 500,
    ...options.circuit,
  });
  const ownOrigins = new Set((options.allowPrefixes ?? []).map((o) => new URL(o).origin));
  const cacheTtlMs = options.cacheTtlMs ?? 0;
  const cache = cacheTtlMs > 0 ? options.cache : undefined;

  async function fetch(url: string): Promise<CrawledPage> {
    const parsed = parseHttpUrl(url);
    // Refuse forbidden hosts before anything else, cache included: a cached copy from a time
    // the allow list was wider must not leak out either.
    await guard.assertUrlAllowed(parsed);

    const cached = cache ? await getCachedPage(cache.db, cache.schema, url, cacheTtlMs) : undefined;
    if (cached?.fresh) return { ...cached.page, cache: "hit", redirects: [], durationMs: 0 };

    // Gleaner's own corpus server: no robots.txt to ask and no one to be polite to.
    const own = ownOrigins.has(parsed.origin);
    let crawlDelayMs: number | undefined;
    if (robotsEnabled && !own) {
      const verdict = await robots.check(parsed.href);
      if (!verdict.allowed) {
        throw new CrawlError(
          verdict.source === "unreachable" ? "robots_unreachable" : "robots_disallowed",
          verdict.source === "unreachable"
            ? `robots.txt of ${parsed.origin} is unreachable, so nothing there is crawled for now`
            : `robots.txt of ${parsed.origin} disallows ${parsed.pathname}`,
          { url },
        );
      }
      crawlDelayMs = verdict.crawlDelayMs;
    }

    const request = () =>
      fetchPage(url, {
        ...baseFetch,
        etag: cached?.page.etag ?? null,
        lastModified: cached?.page.lastModified ?? null,
      });
    const outcome = own
      ? await request()
      : await politeness.schedule(
          parsed.host,
          request,
          crawlDelayMs !== undefined ? { delayMs: crawlDelayMs } : {},
        );

    if (outcome.kind === "not_modified") {
      if (!cached) {
        // We sent no validators, so a 304 is the server's mistake; there is nothing to serve.
        throw new CrawlError("http_4xx", `${url} answered 304 to an unconditional request`, {
          url,
          status: 304,
        });
      }
      if (cache) {
        await touchCachedPage(cache.db, cache.schema, url, outcome.fetchedAt, outcome);
      }
      return {
        ...cached.page,
        etag: outcome.etag ?? cached.page.etag,
        lastModified: outcome.lastModified ?? cached.page.lastModified,
        fetchedAt: outcome.fetchedAt,
        cache: "revalidated",
        redirects: outcome.redirects,
        durationMs: outcome.durationMs,
      };
    }

    const page: CachedPage = {
      url,
      finalUrl: outcome.finalUrl,
      status: outcome.status,
      contentType: outcome.contentType,
      charset: outcome.charset,
      body: outcome.body,
      structured: null,
      etag: outcome.etag,
      lastModified: outcome.lastModified,
      fetchedAt: outcome.fetchedAt,
      bytes: outcome.bytes,
    };
    if (cache) await putCachedPage(cache.db, cache.schema, page);
    return { ...page, cache: "miss", redirects: outcome.redirects, durationMs: outcome.durationMs };
  }

  return { fetch, guard, robots, close: () => guard.close() };
}
