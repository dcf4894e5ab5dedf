import type { CallVerdict } from "../concurrency/call-outcome.ts";
import type { LlmError } from "./llm-error.ts";

/**
 * What a failed LLM call says about the backend's load, for its adaptive concurrency limit
 * (src/concurrency/). A 429, or a 503 (what vLLM and most proxies answer when their queue is
 * full), is an overload; timeouts, other 5xx and lost connections are errors; everything that
 * is about the request rather than the load (a 400, a bad key, our own abort) is neutral. An
 * answer that fails validation is a success here: the backend did answer, in time.
 */
export function llmCallVerdict(error: LlmError): CallVerdict {
  switch (error.errorClass) {
    case "rate_limited":
      return { outcome: "overload", retryAfterMs: error.retryAfterMs };
    case "server_error":
      if (error.status === 503) return { outcome: "overload", retryAfterMs: error.retryAfterMs };
      return { outcome: "error" };
    case "timeout":
    case "connection":
      return { outcome: "error" };
    case "invalid_output":
      return { outcome: "success" };
    default:
      return { outcome: "neutral" };
  }
}
