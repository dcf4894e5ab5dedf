// A live chat completion call, sent straight over `jsonFetch` instead of through the openai
// SDK's request machinery. The SDK's per-request work (headers rebuilt and validated, request
// details formatted for a debug log that is off, an idempotency key, its own timeout wrapper)
// cost more than the rest of the call: `node --import tsx bench/llm-call-cpu.ts` measured
// 245-297 µs of the caller's CPU per call through the SDK against 126-183 µs sent directly, over
// the same node:http fetch in the same runs (2026-12-06, 2-core VM). Errors are still the SDK's own classes, made by its own
// `APIError.generate`, so classify-llm-error.ts reads them exactly as before; the SDK still
// serves the Batch API (files and batches), where a call's cost does not matter.
import { APIConnectionError, APIConnectionTimeoutError, APIError, APIUserAbortError } from "openai";
import type {
  ChatCompletion,
  ChatCompletionCreateParamsNonStreaming,
} from "openai/resources/chat/completions";
import { GLEANER_VERSION } from "../core/gleaner-version.ts";
import { jsonFetch } from "./json-fetch.ts";
import type { LlmBackendConfig } from "./llm-types.ts";

/** Where one backend's chat completions go, with what headers: worked out once per backend. */
export interface ChatCompletionsEndpoint {
  readonly url: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly fetch: typeof globalThis.fetch;
}

/**
 * The backend's `/chat/completions` URL (its `query` added, as the SDK adds `defaultQuery`) and
 * headers: the API key as a bearer token when there is one (keyless servers, Ollama or vLLM,
 * get no Authorization header at all), then the backend's own `headers`, which win (Azure's
 * `api-key`).
 */
export function chatCompletionsEndpoint(
  config: LlmBackendConfig,
  fetch: typeof globalThis.fetch = jsonFetch,
): ChatCompletionsEndpoint {
  const base = config.base_url;
  const url = new URL(base.endsWith("/") ? `${base}chat/completions` : `${base}/chat/completions`);
  for (const [name, value] of Object.entries(config.query ?? {})) url.searchParams.set(name, value);
  const headers: Record<string, string> = {
    accept: "application/json",
    "content-type": "application/json",
    "user-agent": `Gleaner/${GLEANER_VERSION}`,
  };
  if (config.api_key) headers.authorization = `Bearer ${config.api_key}`;
  for (const [name, value] of Object.entries(config.headers ?? {}))
    headers[name.toLowerCase()] = value;
  return { url: url.toString(), headers, fetch };
}

/**
 * Sends one chat completion request and returns the parsed answer. Throws what the SDK throws
 * in the same case: `APIUserAbortError` when `signal` aborted the call,
 * `APIConnectionTimeoutError` or `APIConnectionError` when no answer came, and the status's
 * `APIError` subclass (with the server's error body and headers, so Retry-After is read) for a
 * non-2xx answer. A JSON answer that does not parse throws its SyntaxError (invalid output).
 */
export async function postChatCompletion(
  endpoint: ChatCompletionsEndpoint,
  body: ChatCompletionCreateParamsNonStreaming,
  signal: AbortSignal,
): Promise<ChatCompletion> {
  if (signal.aborted) throw new APIUserAbortError();
  let response: Response;
  try {
    response = await endpoint.fetch(endpoint.url, {
      method: "POST",
      headers: endpoint.headers,
      body: JSON.stringify(body),
      signal,
    });
  } catch (error) {
    if (signal.aborted) throw new APIUserAbortError();
    const cause = error instanceof Error ? error : new Error(String(error));
    // As the SDK tells them apart: an abort it did not ask for, or a message saying so.
    if (cause.name === "AbortError" || /timed? ?out/i.test(`${cause} ${String(cause.cause)}`))
      throw new APIConnectionTimeoutError();
    throw new APIConnectionError({ cause });
  }
  if (!response.ok) {
    const text = await response.text().catch((error: unknown) => String(error));
    const json = parseJson(text);
    throw APIError.generate(
      response.status,
      json,
      json === undefined ? text : undefined,
      response.headers,
    );
  }
  if (response.status === 204) return null as unknown as ChatCompletion;
  const mediaType = response.headers.get("content-type")?.split(";")[0]?.trim() ?? "";
  if (mediaType.includes("application/json") || mediaType.endsWith("+json")) {
    if (response.headers.get("content-length") === "0")
      return undefined as unknown as ChatCompletion;
    return (await response.json()) as ChatCompletion;
  }
  // Not JSON: handed on as text, which readCompletion rejects as an answer without choices.
  return (await response.text()) as unknown as ChatCompletion;
}

function parseJson(text: string): object | undefined {
  try {
    const value = JSON.parse(text) as unknown;
    return typeof value === "object" && value !== null ? value : undefined;
  } catch {
    return undefined;
  }
}
