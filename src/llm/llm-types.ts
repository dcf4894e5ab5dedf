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
  /** A budget cap refused the call (src/budget/): the row waits for the window to reset. */
  | "budget_exhausted"
  | "batch_waiting"
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
  /** What the call is for, written to the cost ledger: the stage and the rows it asks about. */
  purpose?: { stage: string; rowKeys: readonly string[] };
  /** Who asks: recorded with a Batch API request so its rows can be found when it is answered. */
  origin?: { pipeline: string; stage: string };
}

export interface LlmAttempt {
  backend: string;
  model: string;
  startedAt: string;
  durationMs: number;
  /** `cached`: answered from the shared answer cache (llm.cache_ttl); nothing was paid. */
  outcome: "ok" | "error" | "cached";
  errorClass?: LlmErrorClass;
  message?: string;
  /** HTTP status when the backend answered with an error status. */
  status?: number;
  retryAfterMs?: number;
  inputTokens: number;
  outputTokens: number;
  costUsd: number;
  /** A cached answer: what its original call used, saved this time (tokens above are 0). */
  savedInputTokens?: number;
  savedOutputTokens?: number;
  savedCostUsd?: number;
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
  /**
   * Keeps the answer in the shared answer cache. The stage calls it once the answer passed its
   * own validation, never before, so only answers it accepted are served again. A no-op for an
   * answer that came from the cache, or with the cache off; never throws (a failed write is
   * reported by the cache's error hook).
   */
  remember(): Promise<void>;
}

export interface LlmCompletion {
  json: unknown;
  inputTokens: number;
  outputTokens: number;
  costUsd: number;
  durationMs: number;
  model: string;
  /** Set when the answer came from the answer cache: the original call's usage, saved now. */
  cached?: LlmUsage;
  /** Stores a live answer in the answer cache (see LlmCascadeResult.remember). */
  remember?: () => Promise<void>;
  /** Set when another backend answered in this one's place (a budget downgrade). */
  backend?: string;
}

/** One answer kept in the shared cache (<schema>.llm_cache), see src/sql/llm-cache.ts. */
export interface CachedLlmAnswer {
  backend: string;
  model: string;
  /** The parsed answer as JSON text. */
  answer: string;
  inputTokens: number;
  outputTokens: number;
  costUsd: number;
}

/**
 * Where answers are kept: PostgreSQL in production (src/sql/llm-cache.ts). Reads and writes
 * take many keys at once: the answer cache gathers the lookups and writes of the calls made at
 * the same moment (a job's chunks run in parallel) into one statement each.
 */
export interface LlmAnswerStore {
  /** The answers stored under these keys less than `maxAgeMs` ago (database clock). */
  getMany(keys: readonly string[], maxAgeMs: number): Promise<Map<string, CachedLlmAnswer>>;
  putMany(entries: readonly { key: string; answer: CachedLlmAnswer }[]): Promise<void>;
  /** Deletes up to `limit` answers older than `maxAgeMs`; returns how many it deleted. */
  prune(maxAgeMs: number, limit: number): Promise<number>;
}

export interface LlmBackend {
  readonly name: string;
  readonly model: string;
  complete(req: LlmRequest): Promise<LlmCompletion>;
  inFlight(): number;
}
