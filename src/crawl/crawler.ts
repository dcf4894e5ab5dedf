import { createPageReader, type PageReaderOptions, type ReadPage } from "./page-reader.ts";
import type { RobotsCache } from "./robots-cache.ts";
import type { SsrfGuard } from "./ssrf-guard.ts";

/**
 * The page reader without a browser: plain HTTP through the same guard, cache, robots.txt and
 * per-host limit (page-reader.ts). Kept for callers that only ever fetch (benchmarks, the corpus
 * server's tests); stages use the page reader from ResearchServices.
 */

export type CrawlerOptions = Omit<PageReaderOptions, "browser">;

export type CrawledPage = ReadPage;

export interface Crawler {
  fetch(url: string, options?: { signal?: AbortSignal }): Promise<CrawledPage>;
  readonly guard: SsrfGuard;
  readonly robots: RobotsCache;
  close(): Promise<void>;
}

export function createCrawler(options: CrawlerOptions = {}): Crawler {
  const reader = createPageReader(options);
  return {
    fetch: (url, fetchOptions = {}) =>
      reader.read(url, { javascript: "never", signal: fetchOptions.signal }),
    guard: reader.guard,
    robots: reader.robots,
    close: () => reader.close(),
  };
}
