export type {
  CachedLlmAnswer,
  LlmAnswerStore,
  LlmAttempt,
  LlmBackend,
  LlmBackendConfig,
  LlmCascadeResult,
  LlmCompletion,
  LlmErrorClass,
  LlmRequest,
  LlmUsage,
  StructuredOutputMode,
} from "./llm-types.ts";
export type { OutputSpec, OutputType } from "../core/output-types.ts";
export { LlmError, isPermanentClass, type LlmErrorOptions } from "./llm-error.ts";
export { classifyLlmError } from "./classify-llm-error.ts";
export { parseRetryAfter, retryAfterFromHeaders } from "../core/retry-after.ts";
export { parseJsonAnswer } from "./parse-json-answer.ts";
export { ConcurrencyLimit } from "./concurrency-limit.ts";
export { createLlmBackend, type LlmBackendOptions } from "./llm-backend.ts";
export { callCascade } from "./call-cascade.ts";
export {
  buildAnswerSchema,
  validateBatchAnswer,
  type RowAnswer,
  type ValueAnswer,
} from "./json-schema-for-outputs.ts";
export { answerCacheKey, withAnswerCache, type AnswerCacheOptions } from "./answer-cache.ts";
