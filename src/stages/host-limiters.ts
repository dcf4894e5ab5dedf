import { AdaptiveLimiter } from "../concurrency/adaptive-limiter.ts";
import type { CallOutcome } from "../concurrency/call-outcome.ts";
import { hostEndpoint } from "../concurrency/endpoint-key.ts";
import { findCrawlError } from "../crawl/crawl-error.ts";

/**
 * AIMD per crawled host, within [1, crawl.per_host_concurrency], on top of the politeness delay.
 * Per process, unlike LLM and search endpoints: hosts are unbounded in number, so a row per host
 * in PostgreSQL synced every second (or a metrics label per host) would cost more than it saves.
 * The least recently used hosts are forgotten past `maxHosts`.
 */
export class HostLimiters {
  readonly #limiters = new Map<string, AdaptiveLimiter>();
  readonly #max: number;
  readonly #maxHosts: number;

  constructor(perHostConcurrency: number, maxHosts = 10_000) {
    this.#max = perHostConcurrency;
    this.#maxHosts = maxHosts;
  }

  async run<T>(url: string, fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    const host = new URL(url).host;
    let limiter = this.#limiters.get(host);
    if (limiter) {
      this.#limiters.delete(host);
    } else {
      limiter = new AdaptiveLimiter(hostEndpoint(host), { min: 1, max: this.#max });
      if (this.#limiters.size >= this.#maxHosts) {
        const [oldest, idle] = this.#limiters.entries().next().value as [string, AdaptiveLimiter];
        if (idle.inFlight() === 0 && idle.waiting() === 0) {
          idle.close();
          this.#limiters.delete(oldest);
        }
      }
    }
    this.#limiters.set(host, limiter);
    const release = await limiter.acquire(signal);
    try {
      const result = await fn();
      release("success");
      return result;
    } catch (error) {
      const [outcome, retryAfterMs] = crawlVerdict(error);
      release(outcome, retryAfterMs);
      throw error;
    }
  }

  close(): void {
    for (const limiter of this.#limiters.values()) limiter.close();
    this.#limiters.clear();
  }
}

/** What a failed fetch says about the host's load (see call-outcome.ts). */
function crawlVerdict(error: unknown): [CallOutcome, number?] {
  const crawlError = findCrawlError(error);
  switch (crawlError?.errorClass) {
    case "rate_limited":
      return ["overload", crawlError.retryAfterMs];
    case "timeout":
    case "connection":
    case "http_5xx":
      return ["error"];
    default:
      return ["neutral"];
  }
}
