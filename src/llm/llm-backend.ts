// One OpenAI-compatible chat completions endpoint: OpenAI, Ollama, vLLM, llama.cpp, LiteLLM...
// Azure OpenAI needs no special code: base_url https://<res>.openai.azure.com/openai/deployments/<dep>,
// query { "api-version": "<version>" } and header { "api-key": "<key>" } (leave api_key unset).
import OpenAI, { APIError } from "openai";
import type {
  ChatCompletion,
  ChatCompletionCreateParamsNonStreaming,
  ChatCompletionMessageParam,
} from "openai/resources/chat/completions";
import { AdaptiveLimiter } from "../concurrency/adaptive-limiter.ts";
import type { ReleaseSlot } from "../concurrency/call-outcome.ts";
import { llmEndpoint } from "../concurrency/endpoint-key.ts";
import { jsonFetch } from "./json-fetch.ts";
import { classifyLlmError } from "./classify-llm-error.ts";
import { llmCallVerdict } from "./llm-call-verdict.ts";
import { LlmError } from "./llm-error.ts";
import type {
  LlmBackend,
  LlmBackendConfig,
  LlmCompletion,
  LlmRequest,
  LlmUsage,
  StructuredOutputMode,
} from "./llm-types.ts";
import { parseJsonAnswer } from "./parse-json-answer.ts";
import { chatCompletionsEndpoint, postChatCompletion } from "./post-chat-completion.ts";

export interface LlmBackendOptions {
  /** Replaces the global fetch, e.g. to route through a proxy agent. */
  fetch?: typeof globalThis.fetch;
  /**
   * The backend's adaptive concurrency limit, usually from the runtime's registry so it is
   * shared with the other processes; by default one of its own, between min_concurrency and
   * max_concurrency, starting at max_concurrency.
   */
  limiter?: AdaptiveLimiter;
}

export type WireMode = Exclude<StructuredOutputMode, "auto">;

// `auto` walks down this ladder when a backend rejects a response_format it does not support.
const FALLBACK: Record<WireMode, WireMode | null> = {
  json_schema: "json_object",
  json_object: "none",
  none: null,
};
const LADDER: readonly WireMode[] = ["json_schema", "json_object", "none"];

const RESPONSE_FORMAT_REJECTED =
  /response_format|json_schema|json_object|unsupported|not supported/i;

function rejectsResponseFormat(err: unknown): boolean {
  if (!(err instanceof APIError) || (err.status !== 400 && err.status !== 422)) return false;
  return err.param === "response_format" || RESPONSE_FORMAT_REJECTED.test(err.message);
}

// OpenAI only accepts [a-zA-Z0-9_-]{1,64} as a schema name.
function wireSchemaName(name: string): string {
  const cleaned = name.replace(/[^a-zA-Z0-9_-]/g, "_").slice(0, 64);
  return cleaned.length > 0 ? cleaned : "answer";
}

function responseFormat(
  mode: WireMode,
  req: LlmRequest,
): ChatCompletionCreateParamsNonStreaming["response_format"] {
  if (mode === "json_schema") {
    return {
      type: "json_schema",
      json_schema: { name: wireSchemaName(req.schemaName), schema: req.schema, strict: true },
    };
  }
  if (mode === "json_object") return { type: "json_object" };
  return undefined;
}

export function costOf(
  config: LlmBackendConfig,
  inputTokens: number,
  outputTokens: number,
): number {
  if (!config.price) return 0;
  return (
    (inputTokens * config.price.input_per_million +
      outputTokens * config.price.output_per_million) /
    1_000_000
  );
}

/** The chat completions body of a request, as sent live and as written in a Batch API line. */
export function chatCompletionBody(
  config: LlmBackendConfig,
  req: LlmRequest,
  mode: WireMode,
): ChatCompletionCreateParamsNonStreaming {
  const messages: ChatCompletionMessageParam[] = [];
  if (req.system) messages.push({ role: "system", content: req.system });
  messages.push({ role: "user", content: req.prompt });
  const format = responseFormat(mode, req);
  return {
    model: config.model,
    messages,
    ...(config.temperature !== undefined ? { temperature: config.temperature } : {}),
    ...(format ? { response_format: format } : {}),
  };
}

/** The structured output mode a batch line uses: `auto` cannot fall back there, so it asks
 * for what `auto` starts with. */
export function batchWireMode(config: LlmBackendConfig): WireMode {
  return config.structured_output === "auto" ? "json_schema" : config.structured_output;
}

function answerText(completion: ChatCompletion): string {
  const choice = Array.isArray(completion.choices) ? completion.choices[0] : undefined;
  if (!choice) throw new Error("response has no choices");
  const { content, refusal } = choice.message ?? {};
  if (refusal) throw new Error(`model refused: ${refusal}`);
  if (!content) throw new Error(`empty answer (finish_reason ${choice.finish_reason})`);
  return content;
}

/**
 * A chat completion read as an answer: usage priced (times `priceFactor`, 0.5 for the Batch
 * API), the JSON parsed and the request's own `validate` run. Live calls and Batch API lines
 * both come through here, so an answer is held to the same checks whichever way it came.
 */
export function readCompletion(
  config: LlmBackendConfig,
  completion: ChatCompletion,
  req: LlmRequest,
  priceFactor: number,
  durationMs: number,
): LlmCompletion {
  const inputTokens = completion.usage?.prompt_tokens ?? 0;
  const outputTokens = completion.usage?.completion_tokens ?? 0;
  const usage: LlmUsage = {
    inputTokens,
    outputTokens,
    costUsd: costOf(config, inputTokens, outputTokens) * priceFactor,
  };
  let json: unknown;
  try {
    json = parseJsonAnswer(answerText(completion));
    req.validate?.(json);
  } catch (err) {
    const cutOff = completion.choices?.[0]?.finish_reason === "length";
    const message = err instanceof Error ? err.message : String(err);
    throw new LlmError(cutOff ? `${message} (answer cut off at the token limit)` : message, {
      errorClass: "invalid_output",
      backend: config.name,
      usage,
      cause: err,
    });
  }
  return {
    json,
    ...usage,
    durationMs: Math.round(durationMs),
    model: completion.model || config.model,
  };
}

function checkConfig(config: LlmBackendConfig): void {
  if (!Number.isFinite(config.timeout_ms) || config.timeout_ms <= 0) {
    throw new Error(`backend "${config.name}": timeout_ms must be positive`);
  }
  if (
    !LADDER.includes(config.structured_output as WireMode) &&
    config.structured_output !== "auto"
  ) {
    throw new Error(`backend "${config.name}": unknown structured_output mode`);
  }
}

/** The SDK client for one backend's Batch API calls (live calls are sent by
 * post-chat-completion.ts): its URL, key, headers and query, no retries of its own (the pipeline
 * retries rows), nothing read from the environment. */
export function openAiClient(config: LlmBackendConfig, fetch?: typeof globalThis.fetch): OpenAI {
  return new OpenAI({
    baseURL: config.base_url,
    // The client refuses to start without a key; keyless servers (Ollama, vLLM) get a
    // placeholder and the Authorization header is dropped so nothing fake goes on the wire.
    apiKey: config.api_key ?? "unused",
    timeout: config.timeout_ms,
    maxRetries: 0,
    defaultHeaders: { ...(config.api_key ? {} : { Authorization: null }), ...config.headers },
    defaultQuery: config.query,
    // Never pick up OPENAI_ORG_ID / OPENAI_PROJECT_ID from the environment and send them to a
    // third-party server.
    organization: null,
    project: null,
    // node:http rather than undici's fetch unless the caller brings its own: src/llm/json-fetch.ts.
    fetch: fetch ?? jsonFetch,
  });
}

export function createLlmBackend(
  config: LlmBackendConfig,
  options: LlmBackendOptions = {},
): LlmBackend {
  checkConfig(config);
  const limit =
    options.limiter ??
    new AdaptiveLimiter(llmEndpoint(config.name), {
      min: config.min_concurrency ?? 1,
      max: config.max_concurrency,
    });
  // Values that must never reach logs or attempt records, even if a server echoes them back.
  const secrets = [config.api_key, ...Object.values(config.headers ?? {})].filter(
    (s): s is string => typeof s === "string" && s.length > 0,
  );
  const endpoint = chatCompletionsEndpoint(config, options.fetch);
  // The mode `auto` settled on for this backend; only ever moves down the ladder.
  let autoMode: WireMode = "json_schema";

  const fail = (err: unknown, req: LlmRequest, usage?: LlmUsage): LlmError => {
    if (req.signal?.aborted) {
      return new LlmError("LLM request aborted", {
        errorClass: "aborted",
        backend: config.name,
        usage,
        cause: err,
      });
    }
    const classified = classifyLlmError(err, { backend: config.name, secrets });
    if (usage === undefined) return classified;
    return new LlmError(classified.message, {
      errorClass: classified.errorClass,
      retryAfterMs: classified.retryAfterMs,
      backend: config.name,
      status: classified.status,
      usage,
      cause: err,
    });
  };

  async function send(req: LlmRequest, mode: WireMode): Promise<ChatCompletion> {
    const body = chatCompletionBody(config, req, mode);
    // One deadline for the whole call, headers and body: a body that trickles in forever is
    // cut off too.
    const controller = new AbortController();
    const onAbort = (): void => controller.abort(req.signal?.reason);
    req.signal?.addEventListener("abort", onAbort, { once: true });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, config.timeout_ms);
    try {
      return await postChatCompletion(endpoint, body, controller.signal);
    } catch (err) {
      if (timedOut && !req.signal?.aborted) {
        throw new LlmError(`LLM request timed out after ${config.timeout_ms}ms`, {
          errorClass: "timeout",
          backend: config.name,
          cause: err,
        });
      }
      throw err;
    } finally {
      clearTimeout(timer);
      req.signal?.removeEventListener("abort", onAbort);
    }
  }

  async function sendWithFallback(req: LlmRequest): Promise<ChatCompletion> {
    if (config.structured_output !== "auto") return send(req, config.structured_output);
    let mode = autoMode;
    for (;;) {
      try {
        return await send(req, mode);
      } catch (err) {
        const next = FALLBACK[mode];
        if (next === null || !rejectsResponseFormat(err)) throw err;
        mode = next;
        if (LADDER.indexOf(mode) > LADDER.indexOf(autoMode)) autoMode = mode;
      }
    }
  }

  async function complete(req: LlmRequest): Promise<LlmCompletion> {
    // A Retry-After pause no longer than a slow answer is waited out in acquire(); a longer one
    // fails the call now, so a cascade moves on to its next backend and the row is retried
    // after the pause instead of holding its job.
    const pausedForMs = limit.pausedForMs();
    if (pausedForMs > config.timeout_ms) {
      throw new LlmError(
        `backend asked to pause for ${Math.ceil(pausedForMs / 1000)}s more (Retry-After); not called`,
        { errorClass: "rate_limited", retryAfterMs: pausedForMs, backend: config.name },
      );
    }
    let release: ReleaseSlot;
    try {
      release = await limit.acquire(req.signal);
    } catch (err) {
      throw fail(err, req);
    }
    // Measured after getting a slot: this is the backend's latency, not our queueing.
    const started = performance.now();
    // Whatever escapes below without a verdict (it cannot, but a bug must not leak a slot).
    let verdict: ReturnType<typeof llmCallVerdict> = { outcome: "neutral" };
    try {
      let completion: ChatCompletion;
      try {
        completion = await sendWithFallback(req);
      } catch (err) {
        const error = fail(err, req);
        verdict = llmCallVerdict(error);
        throw error;
      }
      // The backend answered: whatever the answer is worth, that is a success for its load.
      verdict = { outcome: "success" };
      return readCompletion(config, completion, req, 1, performance.now() - started);
    } finally {
      release(verdict.outcome, verdict.retryAfterMs);
    }
  }

  return {
    name: config.name,
    model: config.model,
    complete,
    inFlight: () => limit.inFlight(),
  };
}
