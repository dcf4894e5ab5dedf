// Shared types of the LLM layer. Config field names are snake_case because they mirror the
// YAML config one to one; everything computed at runtime is camelCase.

// A backend's settings are config (src/config/ parses them); the LLM layer reads them.
export type { LlmBackendConfig, StructuredOutputMode } from "../config/config-types.ts";

export type LlmErrorClass =
  | "timeout"
  | "rate_limited"
  | "server_error"
  | "connection"
  | "bad_request"
  | "auth"
  | "not_found"
  | "invalid_output"
  | "aborted"
  | "unknown";

export interface LlmRequest {
  system?: string;
  prompt: string;
  schema: Record<string, unknown>;
  schemaName: string;
  signal?: AbortSignal;
  /**
   * Optional shape check run on the parsed answer inside the backend call. Throwing here makes
   * the attempt fail as `invalid_output`, so a cascade moves on to the next backend instead of
   * accepting JSON that parses but is unusable.
   */
  validate?: (json: unknown) => void;
}

export interface LlmAttempt {
  backend: string;
  model: string;
  startedAt: string;
  durationMs: number;
  outcome: "ok" | "error";
  errorClass?: LlmErrorClass;
  message?: string;
  /** HTTP status when the backend answered with an error status. */
  status?: number;
  retryAfterMs?: number;
  inputTokens: number;
  outputTokens: number;
  costUsd: number;
}

export interface LlmUsage {
  inputTokens: number;
  outputTokens: number;
  costUsd: number;
}

export interface LlmCascadeResult {
  json: unknown;
  backend: string;
  model: string;
  attempts: LlmAttempt[];
  usage: LlmUsage;
}

export interface LlmCompletion {
  json: unknown;
  inputTokens: number;
  outputTokens: number;
  costUsd: number;
  durationMs: number;
  model: string;
}

export interface LlmBackend {
  readonly name: string;
  readonly model: string;
  complete(req: LlmRequest): Promise<LlmCompletion>;
  inFlight(): number;
}
