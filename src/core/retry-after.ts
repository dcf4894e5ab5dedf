/**
 * The one reader of `Retry-After` for every outside call (LLM, search, crawl). RFC 9110 §10.2.3
 * allows delta-seconds or an HTTP-date; LLM gateways also send fractional seconds and OpenAI and
 * Azure a `retry-after-ms` header, which wins when present. Anything else is unreadable and gives
 * undefined, so the caller falls back to its own backoff rather than trusting a guess.
 */

/** A longer wait is cut to this, so one odd header cannot park an endpoint or a row for days. */
export const MAX_RETRY_AFTER_MS = 60 * 60_000;

const DELTA_SECONDS = /^\d+(?:\.\d+)?$/;
/** The three HTTP-date forms: IMF-fixdate, obsolete RFC 850, asctime (which carries no zone). */
const IMF_FIXDATE = /^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/;
const RFC850_DATE = /^[A-Z][a-z]+, \d{2}-[A-Z][a-z]{2}-\d{2} \d{2}:\d{2}:\d{2} GMT$/;
const ASCTIME_DATE = /^[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d{2}:\d{2}:\d{2} \d{4}$/;

export interface HeaderSource {
  get(name: string): string | null | undefined;
}

/**
 * Milliseconds from `now` a `Retry-After` value asks to wait, at most `capMs`; undefined when
 * absent or not one of the RFC's forms. A date in the past means "now": 0.
 */
export function parseRetryAfter(
  value: string | readonly string[] | null | undefined,
  now: number,
  capMs: number = MAX_RETRY_AFTER_MS,
): number | undefined {
  const raw = (typeof value === "string" ? value : value?.[0])?.trim();
  if (!raw) return undefined;
  if (DELTA_SECONDS.test(raw)) return Math.min(capMs, Math.ceil(Number(raw) * 1000));
  let at = Number.NaN;
  if (IMF_FIXDATE.test(raw) || RFC850_DATE.test(raw)) at = Date.parse(raw);
  // asctime has no zone; HTTP dates are always GMT, so say so or it would be read as local time.
  else if (ASCTIME_DATE.test(raw)) at = Date.parse(`${raw} GMT`);
  if (Number.isNaN(at)) return undefined;
  return Math.min(capMs, Math.max(0, at - now));
}

/** `retry-after-ms` when readable, else `retry-after`, from a response's headers. */
export function retryAfterFromHeaders(
  headers: HeaderSource | null | undefined,
  now: number,
  capMs: number = MAX_RETRY_AFTER_MS,
): number | undefined {
  if (!headers) return undefined;
  const ms = headers.get("retry-after-ms")?.trim();
  if (ms && DELTA_SECONDS.test(ms)) return Math.min(capMs, Math.ceil(Number(ms)));
  return parseRetryAfter(headers.get("retry-after"), now, capMs);
}
