import robotsParserModule from "robots-parser";
import { SsrfRefusedError, findCrawlError } from "./crawl-error.ts";
import { DEFAULT_USER_AGENT } from "./fetch-page.ts";

// robots-parser is CommonJS (`module.exports = fn`) but its types declare `export default fn`,
// which NodeNext reads as `module.exports.default`: at run time the import is the function.
const robotsParser = robotsParserModule as unknown as typeof robotsParserModule.default;

/**
 * robots.txt per origin, cached in memory. The rules follow Google's handling
 * (developers.google.com/search/docs/crawling-indexing/robots/robots_txt): a 4xx means "no
 * rules", a 5xx, a 429 or an unreachable host means "crawl nothing" for a while, since the site
 * may be unable to tell us what it forbids.
 */

export interface RobotsVerdict {
  allowed: boolean;
  /** Crawl-delay for our user agent (or `*`), in ms, when the file sets one. */
  crawlDelayMs?: number;
  /** Why: `rules`, `no robots.txt` (4xx) or `unreachable` (5xx, 429, network). */
  source: "rules" | "no robots.txt" | "unreachable";
}

/** Fetches robots.txt text; throws a CrawlError (the crawler passes its guarded fetchPage). */
export type FetchRobotsText = (robotsUrl: string) => Promise<string>;

export interface RobotsCacheOptions {
  fetchText: FetchRobotsText;
  userAgent?: string;
  /** How long a fetched robots.txt (or its absence) is trusted. Default 1 h. */
  ttlMs?: number;
  /** How long an unreachable one blocks the origin before we ask again. Default 5 min. */
  unreachableTtlMs?: number;
  now?: () => number;
}

interface Entry {
  expiresAt: number;
  verdictFor(url: string): RobotsVerdict;
}

export interface RobotsCache {
  check(url: string): Promise<RobotsVerdict>;
  isAllowed(url: string): Promise<boolean>;
  crawlDelayMs(url: string): Promise<number | undefined>;
  /** Origins held (for tests and metrics). */
  readonly size: number;
}

export function createRobotsCache(options: RobotsCacheOptions): RobotsCache {
  const ttlMs = options.ttlMs ?? 60 * 60_000;
  const unreachableTtlMs = options.unreachableTtlMs ?? 5 * 60_000;
  const now = options.now ?? Date.now;
  const agentToken = productToken(options.userAgent ?? DEFAULT_USER_AGENT);
  const entries = new Map<string, Entry>();
  // Concurrent checks of one origin share one fetch of its robots.txt.
  const loading = new Map<string, Promise<Entry>>();

  async function load(origin: string): Promise<Entry> {
    const robotsUrl = `${origin}/robots.txt`;
    try {
      const text = await options.fetchText(robotsUrl);
      const robots = robotsParser(robotsUrl, text);
      const delay = robots.getCrawlDelay(agentToken);
      return {
        expiresAt: now() + ttlMs,
        verdictFor: (url) => ({
          // robots-parser says undefined for a URL of another origin; ours never are.
          allowed: robots.isAllowed(url, agentToken) ?? true,
          ...(delay !== undefined && delay > 0 ? { crawlDelayMs: delay * 1000 } : {}),
          source: "rules",
        }),
      };
    } catch (error) {
      const crawlError = findCrawlError(error);
      // A refused address is a verdict on the host, not on its robots.txt: say so to the caller.
      if (crawlError instanceof SsrfRefusedError) throw crawlError;
      if (crawlError?.errorClass === "http_4xx") {
        return {
          expiresAt: now() + ttlMs,
          verdictFor: () => ({ allowed: true, source: "no robots.txt" }),
        };
      }
      // Anything but a CrawlError is a bug in the fetch path, not an unreachable site.
      if (crawlError === undefined) throw error;
      return {
        expiresAt: now() + unreachableTtlMs,
        verdictFor: () => ({ allowed: false, source: "unreachable" }),
      };
    }
  }

  async function entryFor(origin: string): Promise<Entry> {
    const cached = entries.get(origin);
    if (cached && cached.expiresAt > now()) return cached;
    let pending = loading.get(origin);
    if (!pending) {
      pending = load(origin).finally(() => loading.delete(origin));
      loading.set(origin, pending);
      const entry = await pending;
      entries.set(origin, entry);
      return entry;
    }
    return pending;
  }

  async function check(url: string): Promise<RobotsVerdict> {
    const entry = await entryFor(new URL(url).origin);
    return entry.verdictFor(url);
  }

  return {
    check,
    isAllowed: async (url) => (await check(url)).allowed,
    crawlDelayMs: async (url) => (await check(url)).crawlDelayMs,
    get size() {
      return entries.size;
    },
  };
}

/** robots.txt groups name a product token: "Gleaner/0.1 (+…)" is matched as "gleaner". */
export function productToken(userAgent: string): string {
  return (userAgent.trim().split(/[/\s]/)[0] ?? userAgent).toLowerCase();
}
