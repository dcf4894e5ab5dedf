import type { OutputSpec } from "../core/output-types.ts";
import type { WhenCondition } from "./config-schema.ts";
import type { RungName } from "./escalation-schema.ts";

/** The config after parsing, defaults and cross-checks: camelCase, durations in ms, frozen. */
export interface GleanerConfig {
  readonly file: string | undefined;
  readonly databaseUrl: string | undefined;
  /** listen_url: the direct connection for LISTEN; undefined: the main database URL. */
  readonly listenUrl: string | undefined;
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
    readonly preparedStatements: boolean;
  };
  readonly backends: readonly LlmBackendConfig[];
  /** Optional backends switched off (no key for a hosted API), with why; stages run without them. */
  readonly backendsOff: readonly { readonly name: string; readonly reason: string }[];
  /** llm.budget_usd_per_hour, when set. */
  readonly llmBudgetUsdPerHour: number | undefined;
  /** llm.budget: caps on what all pipelines together spend; undefined: none. */
  readonly llmBudget: BudgetSettings | undefined;
  /** llm.cache_ttl: how long a validated answer is served from <schema>.llm_cache; 0: off. */
  readonly llmCacheTtlMs: number;
  /** Adaptive concurrency per endpoint (src/concurrency/). */
  readonly concurrency: {
    /** Share the limits among all processes through <schema>.concurrency_limits. */
    readonly shared: boolean;
    readonly syncIntervalMs: number;
    readonly increaseAbove: number;
    readonly decreaseFactor: number;
  };
  readonly search: {
    readonly providers: readonly SearchProviderSettings[];
    readonly cacheTtlMs: number;
  };
  readonly crawl: CrawlSettings;
  readonly pipelines: readonly PipelineConfig[];
  /** Strings that came from the environment; masked wherever Gleaner prints text. */
  readonly secrets: readonly string[];
}

export interface SearchProviderSettings {
  readonly name: string;
  readonly provider: "serper" | "brave" | "tavily" | "searxng" | "local";
  readonly baseUrl: string | undefined;
  readonly apiKey: string | undefined;
  readonly timeoutMs: number;
  readonly limit: number;
  readonly maxConcurrency: number;
  /** `local` only: the corpus name, and the folder indexed at start and served over HTTP. */
  readonly corpus: string | undefined;
  readonly folder: string | undefined;
  /** search.providers.<name>.price: USD per request; undefined: free. */
  readonly price: number | undefined;
}

/** A `budget` block, pipelines.<p>.budget or llm.budget (src/config/budget-schema.ts). */
export interface BudgetSettings {
  readonly perRowUsd: number | undefined;
  readonly perHourUsd: number | undefined;
  readonly perDayUsd: number | undefined;
  readonly onBudget: "wait" | "downgrade";
  readonly downgradeBackends: readonly string[];
}

export interface CrawlSettings {
  readonly userAgent: string | undefined;
  readonly allow: readonly string[];
  readonly javascript: "always" | "never" | "auto";
  readonly timeoutMs: number;
  readonly maxBytes: number;
  readonly maxRedirects: number;
  readonly cacheTtlMs: number;
  readonly robots: boolean;
  readonly perHostConcurrency: number;
  readonly perHostDelayMs: number;
  readonly browser: {
    readonly executablePath: string;
    readonly contexts: number;
    /** A Playwright browser server to connect to instead of launching Chromium here. */
    readonly endpoint: string | undefined;
    /** Where the guarded proxies listen and the browser reaches them. */
    readonly proxyHost: string;
  };
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
  /** Values below this confidence wait in <schema>.review_queue for a reviewer. */
  readonly reviewBelow: number;
  readonly onInputChange: "reprocess" | "ignore";
  /** on_version_change: rows an older pipeline version produced are re-run (drift) or left. */
  readonly onVersionChange: "reprocess" | "ignore";
  readonly driftRowsPerHour: number;
  /** outputs.<c>.ttl per output that declares one, in ms: a value older is looked up again. Not
   * part of the outputs' specs, so changing a ttl changes no stage's recipe or the version. */
  readonly ttlMs: Readonly<Record<string, number>>;
  readonly schedule: string;
  readonly batchSize: number;
  /** Characters of field values one row puts in a batch prompt (llm and extract stages). */
  readonly maxRowInputChars: number;
  readonly jobSize: number;
  readonly sweepLimit: number;
  readonly leaseMs: number;
  readonly queueTimeoutMs: number;
  readonly retry: RetryPolicy;
  readonly stages: readonly StageConfig[];
  /** Absolute path of a CSV loaded into the table when migrate creates it. */
  readonly seed: string | undefined;
  /** Hash of stages, prompts, models and output schema: which recipe produced a row's values. */
  readonly version: string;
  /** pipelines.<p>.budget; undefined: only llm.budget applies. */
  readonly budget: BudgetSettings | undefined;
  /** pipelines.<p>.escalate, resolved; undefined: no ladder (escalate: false, or no research). */
  readonly escalation: EscalationSettings | undefined;
  /** pipelines.<p>.calibrate: settled confidences go through the mapping `gleaner eval` learnt. */
  readonly calibrate: boolean;
  /** pipelines.<p>.eval: the default golden set and the comparison rules of `gleaner eval`. */
  readonly eval: EvalSettings;
  /** pipelines.<p>.examples: reviewed values shown as few-shot examples, within maxTokens. */
  readonly examples: { readonly maxTokens: number } | undefined;
}

/** The escalation ladder of a research pipeline (src/config/resolve-escalation.ts). */
export interface EscalationSettings {
  readonly rungs: readonly RungName[];
  readonly maxCalls: number;
  readonly maxRounds: number;
  readonly maxPages: number;
  /** stronger_model: backends tried in order (those switched off left out). */
  readonly backends: readonly string[];
  /** search_more: query templates over the inputs and {{column}}. */
  readonly queryTemplates: readonly string[];
  /** The extract stage whose outputs the rungs fill again, and the stages it reads. */
  readonly extractStage: string;
  readonly crawlStage: string;
  readonly searchStage: string | undefined;
  /** The outputs the rungs can fill: the extract stage's. */
  readonly outputs: readonly string[];
}

/** How `gleaner eval` compares one column's values with the known ones. */
export interface ColumnRules {
  /** Absolute, or relative to the known value (`relative: true`, a fraction). */
  readonly tolerance: { readonly amount: number; readonly relative: boolean } | undefined;
  readonly precision: "year" | "month" | "day" | "hour" | "minute" | "second" | undefined;
  readonly synonyms: readonly (readonly string[])[];
}

export interface EvalSettings {
  /** Absolute path of a CSV file, or a schema.table; undefined: --golden is required. */
  readonly golden: string | undefined;
  readonly columns: Readonly<Record<string, ColumnRules>>;
}

interface StageCommon {
  readonly name: string;
  /** Columns the stage fills; empty for research stages (queries, search, select, crawl). */
  readonly outputs: readonly string[];
  readonly when: WhenCondition | undefined;
  readonly batchSize: number;
}

export interface LlmStageConfig extends StageCommon {
  readonly kind: "llm";
  readonly backends: readonly string[];
  readonly system: string | undefined;
  readonly prompt: string;
  /** Overrides its backends' `mode` for this stage; undefined: each backend's own. */
  readonly mode?: StageMode | undefined;
}

/** How a stage's LLM calls are made: live, or queued for the OpenAI Batch API. */
export type StageMode = "live" | "batch";

export interface CustomStageConfig extends StageCommon {
  readonly kind: "custom";
  /** Absolute path of the module. */
  readonly module: string;
  readonly exportName: string;
}

export interface QueriesStageConfig extends StageCommon {
  readonly kind: "queries";
  readonly templates: readonly string[];
  readonly searchContext: string;
  readonly llm:
    | {
        readonly backends: readonly string[];
        readonly count: number;
        readonly prompt: string | undefined;
      }
    | undefined;
  readonly maxQueries: number;
}

export interface SearchStageConfig extends StageCommon {
  readonly kind: "search";
  readonly provider: string;
  readonly resultsPerQuery: number;
  /** The earlier `queries` stage this one reads. */
  readonly queriesStage: string;
}

export interface SelectStageConfig extends StageCommon {
  readonly kind: "select";
  readonly maxUrls: number;
  readonly domainInput: string | undefined;
  readonly keywords: readonly string[];
  readonly llm: { readonly backends: readonly string[] } | undefined;
  readonly searchStage: string;
}

export interface CrawlStageConfig extends StageCommon {
  readonly kind: "crawl";
  readonly maxDepth: number;
  readonly strategy: "breadth_first" | "depth_first" | "selective";
  readonly maxPages: number;
  readonly urlInput: string | undefined;
  readonly javascript: "always" | "never" | "auto";
  readonly rowTimeoutMs: number;
  readonly followKeywords: readonly string[];
  /** The earlier `select` (or `search`) stage whose URLs are crawled, if any. */
  readonly urlsStage: string | undefined;
}

export interface ExtractStageConfig extends StageCommon {
  readonly kind: "extract";
  readonly backends: readonly string[];
  readonly structuredData: boolean;
  readonly tokenBudget: number;
  readonly prompt: string | undefined;
  readonly system: string | undefined;
  /** The earlier `crawl` stage whose pages are read, if any. */
  readonly pagesStage: string | undefined;
  /** The earlier `search` stage whose snippets are evidence too, if any. */
  readonly searchStage: string | undefined;
  /** Overrides its backends' `mode` for this stage; undefined: each backend's own. */
  readonly mode?: StageMode | undefined;
}

export type ResearchStageConfig =
  QueriesStageConfig | SearchStageConfig | SelectStageConfig | CrawlStageConfig;

export type StageConfig =
  LlmStageConfig | CustomStageConfig | ResearchStageConfig | ExtractStageConfig;

/** One entry of llm.backends, as parsed: snake_case because it mirrors the YAML one to one. */
export type StructuredOutputMode = "auto" | "json_schema" | "json_object" | "none";

export interface LlmBackendConfig {
  name: string;
  base_url: string;
  api_key?: string | undefined;
  model: string;
  timeout_ms: number;
  /** Upper bound of the backend's adaptive concurrency limit (src/concurrency/), fleet-wide. */
  max_concurrency: number;
  /** Lower bound of that limit; 1 when unset. */
  min_concurrency?: number | undefined;
  structured_output: StructuredOutputMode;
  temperature?: number | undefined;
  headers?: Record<string, string> | undefined;
  query?: Record<string, string> | undefined;
  price?: { input_per_million: number; output_per_million: number } | undefined;
  /** `batch`: sweeps' calls go through the Batch API (src/llm/batch/); `live` when unset. */
  mode?: "live" | "batch" | undefined;
  /** Batch mode: requests gather this long before they are submitted together. */
  batch_window_ms?: number | undefined;
  /** Batch mode: at most this many requests per batch. */
  batch_max_requests?: number | undefined;
}
