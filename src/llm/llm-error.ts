import type { LlmAttempt, LlmErrorClass, LlmUsage } from "./llm-types.ts";

// Retrying these cannot help: the request itself, the credentials or the model name are wrong.
const PERMANENT_CLASSES: ReadonlySet<LlmErrorClass> = new Set(["bad_request", "auth", "not_found"]);

export function isPermanentClass(errorClass: LlmErrorClass): boolean {
  return PERMANENT_CLASSES.has(errorClass);
}

export interface LlmErrorOptions {
  errorClass: LlmErrorClass;
  cause?: unknown;
  /** Defaults to what the class implies; a cascade overrides it with "all attempts permanent". */
  permanent?: boolean;
  retryAfterMs?: number | undefined;
  backend?: string | undefined;
  attempts?: LlmAttempt[];
  status?: number | undefined;
  /** Tokens already spent when the failure happened (e.g. an answer that did not parse). */
  usage?: LlmUsage | undefined;
  /** `batch_waiting`: the Batch API request (custom_id) the answer will come from. */
  waitingFor?: string | undefined;
}

export class LlmError extends Error {
  readonly errorClass: LlmErrorClass;
  readonly permanent: boolean;
  readonly retryAfterMs?: number;
  readonly backend?: string;
  readonly attempts: LlmAttempt[];
  readonly status?: number;
  readonly usage?: LlmUsage;
  readonly waitingFor?: string;

  constructor(message: string, options: LlmErrorOptions) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "LlmError";
    this.errorClass = options.errorClass;
    this.permanent = options.permanent ?? isPermanentClass(options.errorClass);
    this.attempts = options.attempts ?? [];
    // Only set the optional fields that exist so JSON dumps and toEqual stay free of undefineds.
    if (options.retryAfterMs !== undefined) this.retryAfterMs = options.retryAfterMs;
    if (options.backend !== undefined) this.backend = options.backend;
    if (options.status !== undefined) this.status = options.status;
    if (options.usage !== undefined) this.usage = options.usage;
    if (options.waitingFor !== undefined) this.waitingFor = options.waitingFor;
  }
}
