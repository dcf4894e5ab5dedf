import type { LlmBackendConfig, OutputSpec } from "../llm/llm-types.ts";
import type { WhenCondition } from "./config-schema.ts";

/** The config after parsing, defaults and cross-checks: camelCase, durations in ms, frozen. */
export interface GleanerConfig {
  readonly file: string | undefined;
  readonly databaseUrl: string | undefined;
  readonly schema: string;
  readonly workerSchema: string;
  readonly embedded: { readonly dataDir: string; readonly port: number };
  readonly http: { readonly host: string; readonly port: number };
  readonly api: {
    readonly tokens: readonly string[];
    readonly maxRowsPerJob: number;
    readonly maxBodyBytes: number;
  };
  readonly worker: {
    readonly concurrency: number;
    readonly pollIntervalMs: number;
    readonly localQueue: number;
  };
  readonly backends: readonly LlmBackendConfig[];
  /** llm.budget_usd_per_hour, when set. */
  readonly llmBudgetUsdPerHour: number | undefined;
  readonly pipelines: readonly PipelineConfig[];
  /** Strings that came from the environment; masked wherever Gleaner prints text. */
  readonly secrets: readonly string[];
}

export interface RetryPolicy {
  readonly maxAttempts: number;
  readonly delaysMs: readonly number[];
  readonly jitter: number;
}

export interface PipelineConfig {
  readonly name: string;
  readonly table: { readonly schema: string; readonly name: string };
  readonly key: string;
  readonly inputs: readonly string[];
  readonly outputs: readonly OutputSpec[];
  readonly prefix: string;
  readonly minConfidence: number;
  readonly lowConfidenceRetryAfterMs: number;
  readonly onInputChange: "reprocess" | "ignore";
  readonly schedule: string;
  readonly batchSize: number;
  readonly jobSize: number;
  readonly sweepLimit: number;
  readonly leaseMs: number;
  readonly queueTimeoutMs: number;
  readonly retry: RetryPolicy;
  readonly stages: readonly StageConfig[];
  /** Hash of stages, prompts, models and output schema: which recipe produced a row's values. */
  readonly version: string;
}

interface StageCommon {
  readonly name: string;
  readonly outputs: readonly string[];
  readonly when: WhenCondition | undefined;
  readonly batchSize: number;
}

export interface LlmStageConfig extends StageCommon {
  readonly kind: "llm";
  readonly backends: readonly string[];
  readonly system: string | undefined;
  readonly prompt: string;
}

export interface CustomStageConfig extends StageCommon {
  readonly kind: "custom";
  /** Absolute path of the module. */
  readonly module: string;
  readonly exportName: string;
}

export type StageConfig = LlmStageConfig | CustomStageConfig;
