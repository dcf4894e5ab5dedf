import { APIConnectionError, APIConnectionTimeoutError, APIError, APIUserAbortError } from "openai";
import { maskSecrets } from "../core/mask-secrets.ts";
import { retryAfterFromHeaders } from "../core/retry-after.ts";
import { LlmError } from "./llm-error.ts";
import type { LlmErrorClass } from "./llm-types.ts";

export interface ClassifyContext {
  backend?: string | undefined;
  /** Strings (API keys, auth header values) to blank out of messages; servers sometimes echo them. */
  secrets?: readonly string[] | undefined;
}

function classForStatus(status: number): LlmErrorClass {
  if (status === 401 || status === 403) return "auth";
  if (status === 404) return "not_found";
  if (status === 408) return "timeout";
  if (status === 429) return "rate_limited";
  // 409 is what OpenAI returns on lock contention; their own client retries it.
  if (status === 409 || status >= 500) return "server_error";
  if (status >= 400) return "bad_request";
  return "unknown";
}

function errorName(err: unknown): string | undefined {
  if (typeof err !== "object" || err === null || !("name" in err)) return undefined;
  return typeof err.name === "string" ? err.name : undefined;
}

function errorCode(err: unknown): string | undefined {
  if (typeof err !== "object" || err === null || !("code" in err)) return undefined;
  return typeof err.code === "string" ? err.code : undefined;
}

const CONNECTION_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EPIPE",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "UND_ERR_SOCKET",
  "UND_ERR_CLOSED",
]);

/** Walks the cause chain looking for a Node/undici network error code. */
function networkClass(err: unknown): LlmErrorClass | undefined {
  let current: unknown = err;
  for (let depth = 0; depth < 5 && current; depth++) {
    const code = errorCode(current);
    if (code === "ETIMEDOUT" || code === "UND_ERR_CONNECT_TIMEOUT") return "timeout";
    if (code === "UND_ERR_HEADERS_TIMEOUT" || code === "UND_ERR_BODY_TIMEOUT") return "timeout";
    if (code !== undefined && CONNECTION_CODES.has(code)) return "connection";
    current = current instanceof Error ? current.cause : undefined;
  }
  return undefined;
}

function classify(err: unknown): { errorClass: LlmErrorClass; status?: number } {
  // Order matters: the openai abort/timeout errors are subclasses of APIError.
  if (err instanceof APIUserAbortError) return { errorClass: "aborted" };
  if (err instanceof APIConnectionTimeoutError) return { errorClass: "timeout" };
  if (err instanceof APIConnectionError) {
    return { errorClass: networkClass(err) === "timeout" ? "timeout" : "connection" };
  }
  if (err instanceof APIError) {
    if (typeof err.status === "number") {
      return { errorClass: classForStatus(err.status), status: err.status };
    }
    return { errorClass: "unknown" };
  }
  const name = errorName(err);
  if (name === "AbortError") return { errorClass: "aborted" };
  if (name === "TimeoutError") return { errorClass: "timeout" };
  if (err instanceof SyntaxError || name === "ZodError") return { errorClass: "invalid_output" };
  const network = networkClass(err);
  if (network) return { errorClass: network };
  return { errorClass: "unknown" };
}

function rootCause(err: unknown): unknown {
  let current = err;
  for (
    let depth = 0;
    depth < 5 && current instanceof Error && current.cause !== undefined;
    depth++
  ) {
    current = current.cause;
  }
  return current;
}

function messageOf(err: unknown): string {
  if (err instanceof Error) return err.message || err.name;
  return String(err);
}

/**
 * Turns whatever the openai client (or our own parsing) threw into an LlmError carrying the
 * class the retry policy needs. Messages are redacted because they end up in job logs and
 * attempt records.
 */
export function classifyLlmError(err: unknown, context: ClassifyContext = {}): LlmError {
  if (err instanceof LlmError) {
    if (context.backend === undefined || err.backend !== undefined) return err;
    return new LlmError(err.message, {
      errorClass: err.errorClass,
      permanent: err.permanent,
      retryAfterMs: err.retryAfterMs,
      backend: context.backend,
      attempts: err.attempts,
      status: err.status,
      usage: err.usage,
      cause: err.cause,
    });
  }
  const { errorClass, status } = classify(err);
  const retryAfterMs =
    err instanceof APIError && err.headers instanceof Headers
      ? retryAfterFromHeaders(err.headers, Date.now())
      : undefined;
  let message = maskSecrets(messageOf(err), context.secrets);
  // "Connection error." alone does not say what went wrong; the undici cause does.
  const root = rootCause(err);
  if (errorClass === "connection" && root !== err) {
    message = `${message} (${maskSecrets(messageOf(root), context.secrets)})`;
  }
  return new LlmError(message, {
    errorClass,
    retryAfterMs,
    backend: context.backend,
    status,
    cause: err,
  });
}
