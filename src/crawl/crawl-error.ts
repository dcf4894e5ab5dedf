/**
 * Why a page could not be crawled. The class decides what the caller does next: retry later
 * (timeout, connection, http_5xx, rate_limited, circuit_open), or give up on this URL (the rest).
 */
export type CrawlErrorClass =
  | "invalid_url"
  | "timeout"
  | "connection"
  | "http_4xx"
  | "http_5xx"
  | "rate_limited"
  | "too_large"
  | "unsupported_type"
  | "ssrf_refused"
  | "robots_disallowed"
  /** robots.txt could not be read (5xx, 429, network): nothing there is crawled for a while. */
  | "robots_unreachable"
  | "too_many_redirects"
  | "circuit_open";

// Retrying these can succeed once the host recovers; the others depend on the URL or the policy.
const TRANSIENT_CLASSES: ReadonlySet<CrawlErrorClass> = new Set([
  "timeout",
  "connection",
  "http_5xx",
  "rate_limited",
  "circuit_open",
  "robots_unreachable",
]);

export function isTransientCrawlClass(errorClass: CrawlErrorClass): boolean {
  return TRANSIENT_CLASSES.has(errorClass);
}

export interface CrawlErrorOptions {
  url: string;
  cause?: unknown;
  status?: number | undefined;
  /** From Retry-After (429/503) or a paused host / open circuit: when trying again makes sense. */
  retryAfterMs?: number | undefined;
}

export class CrawlError extends Error {
  readonly errorClass: CrawlErrorClass;
  readonly url: string;
  readonly status?: number;
  readonly retryAfterMs?: number;

  constructor(errorClass: CrawlErrorClass, message: string, options: CrawlErrorOptions) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "CrawlError";
    this.errorClass = errorClass;
    this.url = options.url;
    // Only set optional fields that exist so JSON dumps and toEqual stay free of undefineds.
    if (options.status !== undefined) this.status = options.status;
    if (options.retryAfterMs !== undefined) this.retryAfterMs = options.retryAfterMs;
  }

  get transient(): boolean {
    return isTransientCrawlClass(this.errorClass);
  }
}

/** The SSRF guard refused an address: never retried, never connected to. */
export class SsrfRefusedError extends CrawlError {
  /** The address (or hostname, when it resolved to nothing) that was refused. */
  readonly address: string;
  /** The range it fell in (`loopback`, `private`, `linkLocal`, …) or why the name was refused. */
  readonly reason: string;

  constructor(url: string, address: string, reason: string, cause?: unknown) {
    super("ssrf_refused", `refused to fetch ${url}: ${address} is ${reason}`, { url, cause });
    this.name = "SsrfRefusedError";
    this.address = address;
    this.reason = reason;
  }
}

/** Finds a CrawlError anywhere in a cause chain (undici wraps connector errors in some paths). */
export function findCrawlError(error: unknown): CrawlError | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 8 && current instanceof Error; depth++) {
    if (current instanceof CrawlError) return current;
    current = current.cause;
  }
  return undefined;
}
