import { request, type Dispatcher } from "undici";
import { CrawlError, findCrawlError } from "./crawl-error.ts";
import { decodeBody } from "./decode-body.ts";
import { parseRetryAfter } from "../core/retry-after.ts";
import { parseHttpUrl, type SsrfGuard } from "./ssrf-guard.ts";

/**
 * One page over HTTP, with every limit a crawler of untrusted URLs needs: redirects followed by
 * hand so each hop passes the SSRF guard, a timeout per request and a deadline for all hops, a
 * content-type allow list checked before the body is read, a byte limit enforced while streaming,
 * and charset detection. Failures are CrawlErrors whose class says what to do next.
 */

export const DEFAULT_USER_AGENT = "Gleaner/0.1 (+enrichment crawler; obeys robots.txt)";

export const DEFAULT_ACCEPT_TYPES: readonly string[] = [
  "text/html",
  "application/xhtml+xml",
  "text/plain",
  "text/markdown",
  "application/json",
  "application/ld+json",
];

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

export interface FetchPageOptions {
  /** The guard's dispatcher: its connector checks the address it connects to. */
  dispatcher: Dispatcher;
  /** Checks each hop before a request is made, so a refused redirect never reaches a socket. */
  guard: Pick<SsrfGuard, "assertUrlAllowed">;
  userAgent?: string;
  /** Per request (one hop): headers and body together. */
  timeoutMs?: number;
  /** For the whole fetch, all hops included. */
  deadlineMs?: number;
  maxBytes?: number;
  maxRedirects?: number;
  acceptTypes?: readonly string[];
  /** Validators of a cached copy: a 304 answer returns `not_modified`. */
  etag?: string | null;
  lastModified?: string | null;
  signal?: AbortSignal;
}

interface FetchOutcomeBase {
  url: string;
  finalUrl: string;
  status: number;
  etag: string | null;
  lastModified: string | null;
  /** Every URL redirected to, in order (the last one is finalUrl). */
  redirects: string[];
  fetchedAt: Date;
  durationMs: number;
}

export interface FetchedPage extends FetchOutcomeBase {
  kind: "page";
  /** The media type without parameters, lower case. */
  contentType: string;
  charset: string;
  body: string;
  bytes: number;
}

export interface NotModified extends FetchOutcomeBase {
  kind: "not_modified";
}

export type FetchOutcome = FetchedPage | NotModified;

export async function fetchPage(url: string, options: FetchPageOptions): Promise<FetchOutcome> {
  const started = performance.now();
  const fetchedAt = new Date();
  const timeoutMs = options.timeoutMs ?? 15_000;
  const maxBytes = options.maxBytes ?? 5 * 1024 * 1024;
  const maxRedirects = options.maxRedirects ?? 5;
  const acceptTypes = options.acceptTypes ?? DEFAULT_ACCEPT_TYPES;
  const deadline = AbortSignal.timeout(options.deadlineMs ?? timeoutMs * 2);

  const headers: Record<string, string> = {
    "user-agent": options.userAgent ?? DEFAULT_USER_AGENT,
    accept: `${acceptTypes.join(",")};q=0.9,*/*;q=0.1`,
  };
  if (options.etag) headers["if-none-match"] = options.etag;
  if (options.lastModified) headers["if-modified-since"] = options.lastModified;

  const redirects: string[] = [];
  let current = parseHttpUrl(url);
  for (;;) {
    await options.guard.assertUrlAllowed(current);
    const hopTimeout = AbortSignal.timeout(timeoutMs);
    const signals = [hopTimeout, deadline];
    if (options.signal) signals.push(options.signal);
    const signal = AbortSignal.any(signals);
    const hopUrl = current.href;
    try {
      const response = await request(hopUrl, {
        method: "GET",
        headers,
        signal,
        dispatcher: options.dispatcher,
      });
      const { statusCode } = response;
      const header = (name: string) => headerValue(response.headers[name]);

      if (REDIRECT_STATUSES.has(statusCode)) {
        await discard(response.body);
        const location = header("location");
        if (!location) {
          throw new CrawlError(
            "http_4xx",
            `${hopUrl} redirected (${statusCode}) without Location`,
            {
              url,
              status: statusCode,
            },
          );
        }
        if (redirects.length >= maxRedirects) {
          throw new CrawlError(
            "too_many_redirects",
            `${url} redirected more than ${maxRedirects} times`,
            { url, status: statusCode },
          );
        }
        current = parseHttpUrl(new URL(location, current).href);
        redirects.push(current.href);
        continue;
      }

      const base = {
        url,
        finalUrl: hopUrl,
        status: statusCode,
        etag: header("etag") ?? null,
        lastModified: header("last-modified") ?? null,
        redirects,
        fetchedAt,
      };
      if (statusCode === 304) {
        await discard(response.body);
        return { kind: "not_modified", ...base, durationMs: performance.now() - started };
      }
      if (statusCode < 200 || statusCode > 299) {
        await discard(response.body);
        throw statusError(url, hopUrl, statusCode, header("retry-after"));
      }

      const fullType = header("content-type") ?? "";
      const contentType = fullType.split(";")[0]?.trim().toLowerCase() ?? "";
      if (!acceptTypes.includes(contentType)) {
        await abandon(response.body);
        throw new CrawlError(
          "unsupported_type",
          `${hopUrl} is ${contentType || "of no declared type"}, not one of ${acceptTypes.join(", ")}`,
          { url, status: statusCode },
        );
      }
      const declared = Number(header("content-length"));
      if (Number.isFinite(declared) && declared > maxBytes) {
        await abandon(response.body);
        throw tooLarge(url, hopUrl, maxBytes, statusCode);
      }
      const bytes = await readLimited(response.body, maxBytes, () =>
        tooLarge(url, hopUrl, maxBytes, statusCode),
      );
      const decoded = decodeBody(bytes, fullType);
      return {
        kind: "page",
        ...base,
        contentType,
        charset: decoded.charset,
        body: decoded.text,
        bytes: bytes.length,
        durationMs: performance.now() - started,
      };
    } catch (error) {
      throw classifyFailure(error, url, hopUrl, timeoutMs, hopTimeout, deadline);
    }
  }
}

function statusError(
  url: string,
  hopUrl: string,
  status: number,
  retryAfter: string | undefined,
): CrawlError {
  const retryAfterMs = parseRetryAfter(retryAfter, Date.now());
  if (status === 429) {
    return new CrawlError("rate_limited", `${hopUrl} answered 429 Too Many Requests`, {
      url,
      status,
      retryAfterMs,
    });
  }
  const errorClass = status >= 500 ? "http_5xx" : "http_4xx";
  return new CrawlError(errorClass, `${hopUrl} answered ${status}`, { url, status, retryAfterMs });
}

function tooLarge(url: string, hopUrl: string, maxBytes: number, status: number): CrawlError {
  return new CrawlError("too_large", `${hopUrl} is larger than ${maxBytes} bytes`, {
    url,
    status,
  });
}

/** Reads the body, destroying the stream (so the server stops sending) once past the limit. */
async function readLimited(
  body: Dispatcher.ResponseData["body"],
  maxBytes: number,
  onTooLarge: () => CrawlError,
): Promise<Uint8Array> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (total > maxBytes) {
      body.destroy();
      throw onTooLarge();
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, total);
}

/** Drops a body we do not want; a small one is drained so its keep-alive socket is reused. */
async function discard(body: Dispatcher.ResponseData["body"]): Promise<void> {
  await body.dump({ limit: 64 * 1024 });
}

/**
 * Drops a body we refuse without reading it. dump() closes the stream after at most a byte and
 * handles the abort error itself; a bare destroy() would emit that error with no listener.
 */
async function abandon(body: Dispatcher.ResponseData["body"]): Promise<void> {
  await body.dump({ limit: 1 });
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

const TIMEOUT_CODES = new Set([
  "UND_ERR_CONNECT_TIMEOUT",
  "UND_ERR_HEADERS_TIMEOUT",
  "UND_ERR_BODY_TIMEOUT",
  "ETIMEDOUT",
]);

function classifyFailure(
  error: unknown,
  url: string,
  hopUrl: string,
  timeoutMs: number,
  hopTimeout: AbortSignal,
  deadline: AbortSignal,
): CrawlError {
  const known = findCrawlError(error);
  if (known) return known;
  if (hopTimeout.aborted || deadline.aborted) {
    const what = deadline.aborted ? "the fetch deadline" : `the ${timeoutMs} ms request timeout`;
    return new CrawlError("timeout", `${hopUrl} did not answer within ${what}`, {
      url,
      cause: error,
    });
  }
  const code = (error as { code?: string }).code;
  if (code !== undefined && TIMEOUT_CODES.has(code)) {
    return new CrawlError("timeout", `${hopUrl}: ${code}`, { url, cause: error });
  }
  const message = error instanceof Error ? error.message : String(error);
  return new CrawlError("connection", `${hopUrl}: ${code ?? message}`, { url, cause: error });
}
