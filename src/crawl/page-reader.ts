import type { Db } from "../db/connect-database.ts";
import { decideBrowser, type JavascriptMode } from "./browser-decision.ts";
import type { BrowserPool, RefusedRequest } from "./browser-pool.ts";
import { CrawlError } from "./crawl-error.ts";
import { emptyStructuredData } from "./extract-structured-data.ts";
import { DEFAULT_USER_AGENT, fetchPage, type FetchPageOptions } from "./fetch-page.ts";
import type { DomainSlotStore } from "./domain-slot-store.ts";
import { createFleetPoliteness } from "./fleet-politeness.ts";
import {
  createHostPoliteness,
  type HostPoliteness,
  type HostPolitenessOptions,
} from "./host-politeness.ts";
import { politenessKey } from "./politeness-key.ts";
import {
  getCachedPage,
  putCachedPage,
  touchCachedPage,
  type CachedPage,
  type StoredContent,
} from "./page-cache.ts";
import { extractPageContent, type PageLink } from "./page-content.ts";
import { createRobotsCache, type RobotsCache } from "./robots-cache.ts";
import { createSsrfGuard, parseHttpUrl, type Resolver, type SsrfGuard } from "./ssrf-guard.ts";

/**
 * The one place a page is read: SSRF guard → page cache → robots.txt → per-site limit → fetch →
 * decide to render → render → main text, links and structured data → one page-cache write. The
 * per-site limit (`per_host_concurrency`, `per_host_delay`, Retry-After pauses, the circuit
 * breaker, per registrable domain: politeness-key.ts) is held here, around the fetch and the
 * render together, and nowhere else: every stage reading pages through one reader shares it,
 * and with `fleet` every process of the fleet too. Stages only choose which URLs to read.
 */

export interface PageReaderOptions {
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
  /**
   * Page cache freshness; 0 means no cached copy is ever fresh enough to skip a request. Pages
   * are written to `cache` all the same: it is where a row's page text waits for the extract
   * stage.
   */
  cacheTtlMs?: number;
  cache?: { db: Db; schema: string };
  perHostConcurrency?: number;
  perHostDelayMs?: number;
  circuit?: Pick<HostPolitenessOptions, "failureThreshold" | "coolDownMs">;
  /**
   * Hold the per-site limits for the whole fleet in PostgreSQL (src/sql/crawl-domain-slots.ts)
   * instead of in this process. `leaseMs`: how long a dead process's slot stays taken; default
   * the longest a fetch and a render can take, plus 10 s.
   */
  fleet?: { store: DomainSlotStore; leaseMs?: number; onStoreError?: (error: Error) => void };
  robots?: { enabled?: boolean; ttlMs?: number; unreachableTtlMs?: number };
  /** Tests inject one so no real DNS is asked. */
  resolver?: Resolver;
  /**
   * The browser, asked for on the first page that needs rendering (so Chromium and Playwright
   * load only then). It must use this reader's `guard`. Without it pages are never rendered.
   */
  browser?: (guard: SsrfGuard) => BrowserPool;
}

export interface ReadOptions {
  /** `auto`: render when the fetched HTML looks built by scripts (browser-decision.ts). */
  javascript?: JavascriptMode;
  /** Stops the read wherever it is: waiting for the host, fetching, rendering. */
  signal?: AbortSignal | undefined;
  /** Skip a fresh cached copy and read the page again (validators are still sent). */
  refresh?: boolean;
}

export interface ReadPage extends CachedPage {
  /** The text, links and structured data; always set on a read page. */
  content: StoredContent;
  /** How this read got the page: the cache alone, plain HTTP, or rendered in Chromium. */
  readBy: "cache" | "fetch" | "browser";
  /** Served from the page cache without a request (fresh) or after a 304. */
  cache: "miss" | "hit" | "revalidated";
  redirects: string[];
  durationMs: number;
  /** Sub-requests of a render the SSRF guard refused. */
  refusedRequests: RefusedRequest[];
}

export interface PageReader {
  /** Reads one page (see ReadOptions); fails with a CrawlError (or the signal's reason). */
  read(url: string, options?: ReadOptions): Promise<ReadPage>;
  /** The links of a page, in page order, as `read` found them (cached reads included). */
  links(url: string, options?: ReadOptions): Promise<PageLink[]>;
  readonly guard: SsrfGuard;
  readonly robots: RobotsCache;
  close(): Promise<void>;
}

/** What one trip to the host brought back, before extraction. */
interface Fetched {
  page: CachedPage;
  /** 304: the cached copy stands and nothing new was rendered; only `fetched_at` moves. */
  notModified: boolean;
  rendered: boolean;
  redirects: string[];
  durationMs: number;
  refusedRequests: RefusedRequest[];
}

export function createPageReader(options: PageReaderOptions = {}): PageReader {
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
  const timeoutMs = options.timeoutMs ?? 15_000;
  const baseFetch: FetchPageOptions = {
    dispatcher: guard.dispatcher,
    guard,
    userAgent,
    timeoutMs,
    deadlineMs: options.deadlineMs ?? timeoutMs * 2,
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
  const politenessOptions: HostPolitenessOptions = {
    concurrency: perHostConcurrency,
    delayMs: options.perHostDelayMs ?? 500,
    ...options.circuit,
  };
  const fleet = options.fleet;
  const politeness: HostPoliteness = fleet
    ? createFleetPoliteness({
        ...politenessOptions,
        store: fleet.store,
        leaseMs: fleet.leaseMs ?? (baseFetch.deadlineMs ?? timeoutMs * 2) + timeoutMs + 10_000,
        ...(fleet.onStoreError ? { onStoreError: fleet.onStoreError } : {}),
      })
    : createHostPoliteness(politenessOptions);
  const ownOrigins = new Set((options.allowPrefixes ?? []).map((o) => new URL(o).origin));
  const cacheTtlMs = options.cacheTtlMs ?? 0;
  const cache = options.cache;
  let browser: BrowserPool | undefined;
  const browserPool = (): BrowserPool | undefined => {
    if (!options.browser) return undefined;
    browser ??= options.browser(guard);
    return browser;
  };

  /** Fetches, and renders when the mode and the HTML say so; runs inside the host's slot. */
  async function fetchAndRender(
    url: string,
    cached: CachedPage | undefined,
    mode: JavascriptMode,
    signal: AbortSignal | undefined,
  ): Promise<Fetched> {
    const outcome = await fetchPage(url, {
      ...baseFetch,
      etag: cached?.etag ?? null,
      lastModified: cached?.lastModified ?? null,
      ...(signal ? { signal } : {}),
    });
    let page: CachedPage;
    if (outcome.kind === "not_modified") {
      if (!cached) {
        // We sent no validators, so a 304 is the server's mistake; there is nothing to serve.
        throw new CrawlError("http_4xx", `${url} answered 304 to an unconditional request`, {
          url,
          status: 304,
        });
      }
      page = {
        ...cached,
        etag: outcome.etag ?? cached.etag,
        lastModified: outcome.lastModified ?? cached.lastModified,
        fetchedAt: outcome.fetchedAt,
      };
    } else {
      page = {
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
    }
    const base = {
      redirects: outcome.redirects,
      durationMs: outcome.durationMs,
      refusedRequests: [],
    };
    const alreadyRendered = page.content?.rendered === true;
    const wantsRender =
      isHtml(page.contentType) &&
      !alreadyRendered &&
      decideBrowser(mode, { html: page.body, contentType: page.contentType }).render;
    const pool = wantsRender ? browserPool() : undefined;
    if (!pool) {
      return { ...base, page, notModified: outcome.kind === "not_modified", rendered: false };
    }
    signal?.throwIfAborted();
    const rendered = await pool.render(page.finalUrl, signal ? { signal } : {});
    return {
      ...base,
      page: {
        ...page,
        finalUrl: rendered.finalUrl,
        status: rendered.status || page.status,
        body: rendered.html,
        content: undefined,
      },
      notModified: false,
      rendered: true,
      durationMs: base.durationMs + rendered.durationMs,
      refusedRequests: rendered.refusedRequests,
    };
  }

  async function read(url: string, readOptions: ReadOptions = {}): Promise<ReadPage> {
    const mode = readOptions.javascript ?? "auto";
    const { signal } = readOptions;
    signal?.throwIfAborted();
    const parsed = parseHttpUrl(url);
    // Refuse forbidden hosts before anything else, cache included: a cached copy from a time
    // the allow list was wider must not leak out either.
    await guard.assertUrlAllowed(parsed);

    const cached =
      cache && cacheTtlMs > 0
        ? await getCachedPage(cache.db, cache.schema, url, cacheTtlMs)
        : undefined;
    const usable =
      cached?.fresh === true &&
      !readOptions.refresh &&
      cached.page.content !== undefined &&
      (mode !== "always" || cached.page.content.rendered || !isHtml(cached.page.contentType));
    if (usable && cached.page.content) {
      return {
        ...cached.page,
        content: cached.page.content,
        readBy: "cache",
        cache: "hit",
        redirects: [],
        durationMs: 0,
        refusedRequests: [],
      };
    }

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

    const task = () => fetchAndRender(url, cached?.page, mode, signal);
    const fetched = own
      ? await task()
      : await politeness.schedule(politenessKey(parsed.host), task, {
          signal,
          ...(crawlDelayMs !== undefined ? { delayMs: crawlDelayMs } : {}),
        });

    const { page } = fetched;
    const keptContent = fetched.notModified ? page.content : undefined;
    const extracted = keptContent ? undefined : contentOf(page, fetched.rendered);
    const content = keptContent ?? withoutStructured(extracted ?? contentOf(page, false));
    const structured = extracted ? extracted.structured : page.structured;
    const stored: CachedPage = { ...page, structured, content };
    // The one write of this read: a 304 over extracted content only moves fetched_at.
    if (cache) {
      if (keptContent) await touchCachedPage(cache.db, cache.schema, url, page.fetchedAt, page);
      else await putCachedPage(cache.db, cache.schema, stored);
    }
    return {
      ...stored,
      content,
      readBy: keptContent ? "cache" : fetched.rendered ? "browser" : "fetch",
      cache: fetched.notModified ? "revalidated" : "miss",
      redirects: fetched.redirects,
      durationMs: fetched.durationMs,
      refusedRequests: fetched.refusedRequests,
    };
  }

  return {
    read,
    links: async (url, readOptions) => (await read(url, readOptions)).content.links,
    guard,
    robots,
    async close() {
      await Promise.all([browser?.close(), guard.close()]);
      browser = undefined;
    },
  };
}

function isHtml(contentType: string): boolean {
  return /html/i.test(contentType);
}

/** Text, links and structured data of a fetched or rendered body. */
function contentOf(page: CachedPage, rendered: boolean): StoredContent & { structured: unknown } {
  if (!isHtml(page.contentType)) {
    return {
      title: "",
      markdown: page.body,
      links: [],
      rendered,
      structured: emptyStructuredData(),
    };
  }
  const extracted = extractPageContent(page.body, page.finalUrl);
  return {
    title: extracted.title,
    markdown: extracted.markdown,
    links: extracted.links,
    rendered,
    structured: extracted.structured,
  };
}

function withoutStructured(content: StoredContent & { structured?: unknown }): StoredContent {
  return {
    title: content.title,
    markdown: content.markdown,
    links: content.links,
    rendered: content.rendered,
  };
}
