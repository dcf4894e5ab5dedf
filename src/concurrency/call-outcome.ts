/**
 * What a finished call says about its endpoint's load. The limiter only needs this much, so
 * every caller (LLM backends, search providers, the crawler) maps its own errors onto it:
 *
 * - `success`: the endpoint answered; counts toward raising the limit.
 * - `overload`: the endpoint asked us to slow down (429, 503); the limit drops at once, and a
 *   Retry-After pauses the endpoint.
 * - `error`: a timeout, a 5xx or a broken connection; a window where these outnumber successes
 *   lowers the limit, a few of them do not.
 * - `neutral`: says nothing about load (a 400, 401, 404, or our own abort); not counted.
 */
export type CallOutcome = "success" | "overload" | "error" | "neutral";

export interface CallVerdict {
  outcome: CallOutcome;
  /** How long the endpoint asked us to wait (Retry-After), for `overload`. */
  retryAfterMs?: number | undefined;
}

/** Returned by `acquire`: call once when the call is over. Later calls are ignored. */
export type ReleaseSlot = (outcome: CallOutcome, retryAfterMs?: number) => void;
