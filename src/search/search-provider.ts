/**
 * One interface for every search backend, so the `search` stage, the cache and the metrics never
 * care which provider answered. Providers map their own request and response shapes onto it.
 */

export interface SearchResult {
  readonly title: string;
  readonly url: string;
  /** Plain text (markup stripped): it goes into prompts and into the row's state. */
  readonly snippet: string;
  /** 1-based position in this provider's answer; contiguous even when items were dropped. */
  readonly rank: number;
  /** The provider's `name`, so results merged from several providers keep their origin. */
  readonly provider: string;
}

export interface SearchOptions {
  /** The most results wanted; a provider may return fewer, and never more. */
  limit: number;
  /** Cancels the call (a worker shutting down); the provider's own timeout applies as well. */
  signal?: AbortSignal;
  /**
   * Who asks, for a paid provider's budget (src/budget/search-budget.ts): the request is reserved
   * against the pipeline's windows and charged to these rows. A search answered from the cache
   * or shared with one in flight is charged to nobody.
   */
  purpose?: SearchPurpose;
}

export interface SearchPurpose {
  pipeline: string;
  stage: string;
  rowKeys: readonly string[];
  /** Told what a request made for this purpose cost (the provider's price), once it is paid. */
  onCharge?: (usd: number) => void;
}

export interface SearchProvider {
  /** Stable identifier: the cache key, the metrics label and `SearchResult.provider`. */
  readonly name: string;
  search(query: string, options: SearchOptions): Promise<SearchResult[]>;
}

export type SearchErrorClass =
  | "timeout"
  | "rate_limited"
  | "server_error"
  | "connection"
  | "auth"
  | "bad_request"
  | "invalid_response";

// Retrying cannot fix these: the key or the request itself is wrong until someone changes it.
// An invalid response is treated as transient: it is most often a proxy's error page.
const PERMANENT_CLASSES: ReadonlySet<SearchErrorClass> = new Set(["auth", "bad_request"]);

export function isPermanentSearchClass(errorClass: SearchErrorClass): boolean {
  return PERMANENT_CLASSES.has(errorClass);
}

export interface SearchErrorOptions {
  provider: string;
  errorClass: SearchErrorClass;
  query?: string | undefined;
  status?: number | undefined;
  /** From Retry-After on 429/503: when the provider said trying again makes sense. */
  retryAfterMs?: number | undefined;
  cause?: unknown;
}

/** A failed search. Messages never contain the provider's key (see search-http.ts). */
export class SearchError extends Error {
  readonly provider: string;
  readonly errorClass: SearchErrorClass;
  readonly permanent: boolean;
  readonly query?: string;
  readonly status?: number;
  readonly retryAfterMs?: number;

  constructor(message: string, options: SearchErrorOptions) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "SearchError";
    this.provider = options.provider;
    this.errorClass = options.errorClass;
    this.permanent = isPermanentSearchClass(options.errorClass);
    // Only set the optional fields that exist so JSON dumps and toEqual stay free of undefineds.
    if (options.query !== undefined) this.query = options.query;
    if (options.status !== undefined) this.status = options.status;
    if (options.retryAfterMs !== undefined) this.retryAfterMs = options.retryAfterMs;
  }
}
