// The one place hosted providers talk HTTP, so timeouts, cancellation, error classes and key
// redaction behave the same for Serper, Brave, Tavily and SearXNG.
import { maskSecrets } from "../core/mask-secrets.ts";
import { retryAfterFromHeaders } from "../core/retry-after.ts";
import { SearchError, type SearchErrorClass } from "./search-provider.ts";

/** What every hosted provider is built from (see create-search-provider.ts). */
export interface HostedProviderOptions {
  baseUrl: string;
  apiKey?: string | undefined;
  timeoutMs: number;
  /** Upper bound on results asked per query, whatever the caller's limit (cost control). */
  maxResults?: number | undefined;
  /** Overrides the provider's default name (two SearXNG instances, say). */
  name?: string | undefined;
}

export interface SearchHttpRequest {
  provider: string;
  query: string;
  url: URL;
  method: "GET" | "POST";
  headers: Record<string, string>;
  /** Sent as JSON. */
  body?: unknown;
  timeoutMs: number;
  signal?: AbortSignal | undefined;
  /** Values to blank out of every message: servers sometimes echo the key back in errors. */
  secrets: readonly string[];
}

/** `{base}/{path}` keeping any path prefix in base (a SearXNG under /searx, a proxy). */
export function joinBaseUrl(baseUrl: string, path: string): URL {
  const url = new URL(baseUrl);
  url.pathname = `${url.pathname.replace(/\/+$/, "")}/${path.replace(/^\/+/, "")}`;
  return url;
}

const EXCERPT_CHARS = 200;

/** Sends one request and returns the parsed JSON body, or throws a SearchError. */
export async function fetchSearchJson(req: SearchHttpRequest): Promise<unknown> {
  req.signal?.throwIfAborted();
  const timeout = AbortSignal.timeout(req.timeoutMs);
  const signal = req.signal ? AbortSignal.any([req.signal, timeout]) : timeout;
  const fail = (errorClass: SearchErrorClass, detail: string, extra: Partial<ErrorExtra> = {}) =>
    new SearchError(maskSecrets(`${req.provider} search failed: ${detail}`, req.secrets), {
      provider: req.provider,
      errorClass,
      query: req.query,
      ...extra,
    });

  let response: Response;
  let text: string;
  try {
    response = await fetch(req.url, {
      method: req.method,
      headers: { accept: "application/json", ...req.headers },
      body: req.body === undefined ? undefined : JSON.stringify(req.body),
      signal,
      // Never follow: fetch keeps custom key headers (X-API-KEY, X-Subscription-Token) across
      // origins, so a redirect could hand the key to another host.
      redirect: "manual",
    });
    text = await response.text();
  } catch (error) {
    // The caller's cancellation is not a provider failure: let it surface as the caller's own.
    if (req.signal?.aborted) throw req.signal.reason;
    if (timeout.aborted) {
      throw fail("timeout", `no answer within ${req.timeoutMs} ms`, { cause: error });
    }
    throw networkFailure(error, fail);
  }

  const status = response.status;
  if (status >= 200 && status < 300) {
    try {
      return JSON.parse(text) as unknown;
    } catch (error) {
      throw fail(
        "invalid_response",
        `HTTP ${status} with a body that is not JSON: ${excerpt(text)}`,
        {
          status,
          cause: error,
        },
      );
    }
  }
  const body = excerpt(text);
  if (status >= 300 && status < 400) {
    const location = response.headers.get("location") ?? "(no location)";
    throw fail(
      "bad_request",
      `HTTP ${status} redirect to ${location}: set base_url to the final address`,
      { status },
    );
  }
  const retryAfterMs = retryAfterFromHeaders(response.headers, Date.now());
  const errorClass = classForStatus(status);
  throw fail(errorClass, `HTTP ${status}${body ? `: ${body}` : ""}`, {
    status,
    retryAfterMs:
      errorClass === "rate_limited" || errorClass === "server_error" ? retryAfterMs : undefined,
  });
}

interface ErrorExtra {
  status: number | undefined;
  retryAfterMs: number | undefined;
  cause: unknown;
}

function classForStatus(status: number): SearchErrorClass {
  if (status === 401 || status === 403) return "auth";
  if (status === 408) return "timeout";
  if (status === 429) return "rate_limited";
  if (status >= 500) return "server_error";
  return "bad_request";
}

function networkFailure(
  error: unknown,
  fail: (c: SearchErrorClass, detail: string, extra?: Partial<ErrorExtra>) => SearchError,
): SearchError {
  // Node's fetch reports every network failure as TypeError("fetch failed") with the socket
  // error as its cause; those carry no request headers, so the cause is kept.
  if (error instanceof TypeError && error.message === "fetch failed") {
    const cause = error.cause instanceof Error ? `: ${error.cause.message}` : "";
    return fail("connection", `cannot reach the provider${cause}`, { cause: error });
  }
  // Anything else was raised building the request (an invalid header value, say), and such
  // messages quote the header, i.e. the key: keep only the redacted text, not the original.
  const message = error instanceof Error ? error.message : String(error);
  return fail("bad_request", `the request could not be sent: ${message}`);
}

function excerpt(text: string): string {
  const flat = text.replace(/\s+/g, " ").trim();
  return flat.length > EXCERPT_CHARS ? `${flat.slice(0, EXCERPT_CHARS)}…` : flat;
}
