import cron from "node-cron";
import { z } from "zod";
import { OUTPUT_TYPES } from "../core/output-types.ts";
import { escalationSchema } from "./escalation-schema.ts";
import { budgetSchema } from "./budget-schema.ts";
import { evalSchema } from "./eval-schema.ts";
import { parseDuration } from "./parse-duration.ts";

/**
 * The shape of gleaner.yaml. Everything a user can write is declared here, with its default,
 * so docs/configuration.md and this file can be read side by side.
 */

/** Lower-case SQL identifiers only: they are quoted everywhere, and lower case means the quoted
 * name is the same one a user types unquoted in psql. */
const IDENT = /^[a-z_][a-z0-9_]{0,62}$/;
const identifier = z
  .string()
  .regex(IDENT, "must be a lower-case SQL identifier: letters, digits and _, at most 63 chars");

const duration = z
  .string({
    // A YAML number (lease: 5) arrives as a number: say what to write, not just "expected string".
    error: (issue) =>
      `${JSON.stringify(issue.input)} is not a duration: give it a unit, e.g. 250ms, 30s, 5m, 1h, 1h30m`,
  })
  .transform((text, ctx) => {
    const ms = parseDuration(text);
    if (ms === undefined) {
      ctx.addIssue({
        code: "custom",
        message: `"${text}" is not a duration: write e.g. 250ms, 30s, 5m, 1h, 1h30m`,
      });
      return z.NEVER;
    }
    return ms;
  });

const DAY_MS = 86_400_000;

/**
 * The longest a duration may be. Durations that drive a timer (setTimeout, setInterval,
 * AbortSignal.timeout, PostgreSQL's statement_timeout) are capped at 24 days: Node's timers hold
 * at most 2^31-1 ms (24.8 days) and fire at once past it, which would turn a 30-day poll into a
 * busy loop. Durations that only set a due time or an age in PostgreSQL are capped at ten years,
 * far beyond any use and well inside what its timestamps hold.
 */
export const TIMER_MAX = { ms: 24 * DAY_MS, text: "24d, the longest a timer can wait" } as const;
export const STORED_MAX = { ms: 3650 * DAY_MS, text: "3650d (ten years)" } as const;

/** A duration between `min` (default 0) and `max`, each bound named in its message. */
const boundedDuration = (max: { ms: number; text: string }, min?: { ms: number; text: string }) =>
  duration
    .refine((ms) => ms >= (min?.ms ?? 0), { message: `must be at least ${min?.text ?? "0ms"}` })
    .refine((ms) => ms <= max.ms, { message: `must be at most ${max.text}` });

const atLeast = (ms: number, text: string) => ({ ms, text });

/** crawl.timeout: all the redirect hops of one fetch get twice it, on one timer. */
const CRAWL_TIMEOUT_MAX = {
  ms: 12 * DAY_MS,
  text: "12d: all the redirect hops of a fetch get twice it, and a timer waits at most 24d",
} as const;

const outputSpec = z.strictObject({
  type: z.enum(OUTPUT_TYPES, { message: `must be one of ${OUTPUT_TYPES.join(", ")}` }),
  description: z.string().min(1, "must describe the value so the model knows what to find"),
  /** A value older than this is looked up again (freshness); the earlier values are kept. */
  ttl: boundedDuration(STORED_MAX, { ms: 60_000, text: "1m" }).optional(),
});

const comparable = z.union([z.string(), z.number(), z.boolean()]);

export interface WhenCondition {
  output?: string;
  equals?: string | number | boolean;
  not_equals?: string | number | boolean;
  in?: (string | number | boolean)[];
  not_in?: (string | number | boolean)[];
  gt?: number;
  gte?: number;
  lt?: number;
  lte?: number;
  is_null?: boolean;
  /** Tests the confidence of the answer that filled `output` (0 when NULL, 1 when a user wrote
   * it): `{ output: industry, confidence: { gte: 0.8 } }`. */
  confidence?: ConfidenceTest;
  all?: WhenCondition[];
  any?: WhenCondition[];
  not?: WhenCondition;
}

export interface ConfidenceTest {
  gt?: number;
  gte?: number;
  lt?: number;
  lte?: number;
}

const confidenceBound = z
  .number()
  .min(0, "a confidence is between 0 and 1")
  .max(1, "a confidence is between 0 and 1");
const confidenceTest = z
  .strictObject({
    gt: confidenceBound.optional(),
    gte: confidenceBound.optional(),
    lt: confidenceBound.optional(),
    lte: confidenceBound.optional(),
  })
  .refine((t) => Object.keys(t).length > 0, "give at least one of gt, gte, lt, lte");

const when: z.ZodType<WhenCondition> = z.lazy(() =>
  z
    .strictObject({
      output: identifier.optional(),
      equals: comparable.optional(),
      not_equals: comparable.optional(),
      in: z.array(comparable).optional(),
      not_in: z.array(comparable).optional(),
      gt: z.number().optional(),
      gte: z.number().optional(),
      lt: z.number().optional(),
      lte: z.number().optional(),
      is_null: z.boolean().optional(),
      confidence: confidenceTest.optional(),
      all: z.array(when).optional(),
      any: z.array(when).optional(),
      not: when.optional(),
    })
    .superRefine((w, ctx) => {
      const tests = [
        "equals",
        "not_equals",
        "in",
        "not_in",
        "gt",
        "gte",
        "lt",
        "lte",
        "is_null",
        "confidence",
      ];
      const hasTest = tests.some((t) => t in w);
      const combinators = ["all", "any", "not"].filter((c) => c in w);
      if (w.output !== undefined && !hasTest) {
        ctx.addIssue({
          code: "custom",
          message: `a test on "${w.output}" needs one of ${tests.join(", ")}`,
        });
      }
      // evaluateWhen reads all / any / not first and ignores anything beside them, so a mix
      // would silently drop part of the condition.
      const mixed = w.output === undefined ? hasTest : combinators.length > 0;
      if (mixed || (w.output === undefined && combinators.length !== 1)) {
        ctx.addIssue({
          code: "custom",
          message: "write either {output, <test>} or exactly one of all / any / not",
        });
      }
    }),
);

const stageCommon = {
  name: identifier,
  outputs: z.array(identifier).min(1, "a stage must fill at least one output"),
  when: when.optional(),
  /** Rows per call; defaults to the pipeline's batch_size. */
  batch_size: z.number().int().min(1).max(500).optional(),
};

/** Research stages (queries, search, select, crawl) fill no column: they feed later stages. */
const researchCommon = {
  name: identifier,
  when: when.optional(),
  batch_size: z.number().int().min(1).max(500).optional(),
};

const llmHelper = z.strictObject({
  backends: z.array(z.string().min(1)).min(1, "name at least one backend from llm.backends"),
});

const queriesStage = z.strictObject({
  ...researchCommon,
  kind: z.literal("queries"),
  /** Query templates with {{column}} fields (and {{search_context}}). Default: the inputs. */
  templates: z.array(z.string().min(1)).min(1).optional(),
  /** Words added to every query (unless a template places {{search_context}} itself). */
  search_context: z.string().default(""),
  /** Queries written by an LLM instead of (before) the templates. */
  llm: llmHelper
    .extend({ count: z.number().int().min(1).max(10).default(3), prompt: z.string().optional() })
    .optional(),
  max_queries: z.number().int().min(1).max(20).default(3),
});

const searchStage = z.strictObject({
  ...researchCommon,
  kind: z.literal("search"),
  /** A provider named under search.providers. */
  provider: z.string().min(1),
  results_per_query: z.number().int().min(1).max(50).default(8),
});

const selectStage = z.strictObject({
  ...researchCommon,
  kind: z.literal("select"),
  max_urls: z.number().int().min(1).max(50).default(4),
  /** The input column holding the row's own domain or website; its pages rank first. */
  domain_input: identifier.optional(),
  /** Extra words that make a result more likely to hold the answer. */
  keywords: z.array(z.string().min(1)).default([]),
  /** Rank with an LLM after the keyword pass. */
  llm: llmHelper.optional(),
});

const crawlStage = z.strictObject({
  ...researchCommon,
  kind: z.literal("crawl"),
  /** Links followed from the selected pages, within their site; 0 fetches only the selected. */
  max_depth: z.number().int().min(0).max(5).default(1),
  strategy: z.enum(["breadth_first", "depth_first", "selective"]).default("selective"),
  /** Pages fetched per row, followed links included. */
  max_pages: z.number().int().min(1).max(100).default(8),
  /** An input column holding a URL to crawl as well (a row's own website). */
  url_input: identifier.optional(),
  /** Overrides crawl.javascript for this stage. */
  javascript: z.enum(["always", "never", "auto"]).optional(),
  /** Time for all of a row's pages; what was fetched by then is kept. */
  row_timeout: boundedDuration(TIMER_MAX, atLeast(1000, "1s")).prefault("60s"),
  /** Words of link texts the `selective` strategy follows, added to the outputs' own words. */
  follow_keywords: z.array(z.string().min(1)).default([]),
});

const extractStage = z.strictObject({
  ...stageCommon,
  kind: z.literal("extract"),
  /** LLM backends for what the structured data does not answer; none: structured data only. */
  backends: z.array(z.string().min(1)).default([]),
  /** Read JSON-LD, microdata, OpenGraph and meta tags first, at no LLM cost. */
  structured_data: z.boolean().default(true),
  /** Tokens of page text per row in the prompt (about 4 characters a token). */
  token_budget: z.number().int().min(200).max(100_000).default(1500),
  /** Extra instructions for the model. */
  prompt: z.string().optional(),
  system: z.string().optional(),
  /**
   * `batch` or `live`: overrides the mode of the backends this stage names, for this stage only
   * (a `batch` stage on a live backend queues its calls for the Batch API; a `live` stage on a
   * batch backend calls it live). Unset: each backend's own `mode`.
   */
  mode: z.enum(["live", "batch"], { message: "must be live or batch" }).optional(),
});

const llmStage = z.strictObject({
  ...stageCommon,
  kind: z.literal("llm"),
  backends: z.array(z.string().min(1)).min(1, "name at least one backend from llm.backends"),
  system: z.string().optional(),
  prompt: z.string().min(1),
  /**
   * `batch` or `live`: overrides the mode of the backends this stage names, for this stage only
   * (a `batch` stage on a live backend queues its calls for the Batch API; a `live` stage on a
   * batch backend calls it live). Unset: each backend's own `mode`.
   */
  mode: z.enum(["live", "batch"], { message: "must be live or batch" }).optional(),
});

const customStage = z.strictObject({
  ...stageCommon,
  kind: z.literal("custom"),
  /** Path to a module, relative to the config file, exporting the stage function. */
  module: z.string().min(1),
  export: z.string().default("default"),
});

export const STAGE_KINDS = [
  "llm",
  "custom",
  "queries",
  "search",
  "select",
  "crawl",
  "extract",
] as const;

const stage = z.discriminatedUnion(
  "kind",
  [llmStage, customStage, queriesStage, searchStage, selectStage, crawlStage, extractStage],
  { message: `kind must be one of ${STAGE_KINDS.join(", ")}` },
);

const retry = z
  .strictObject({
    max_attempts: z.number().int().min(1).max(100).default(5),
    delays: z.array(boundedDuration(STORED_MAX)).min(1).prefault(["1m", "5m", "15m", "1h", "4h"]),
    /** Each delay is multiplied by a random factor in [1 - jitter, 1 + jitter]. */
    jitter: z.number().min(0).max(1).default(0.2),
  })
  .prefault({});

const cronExpression = z.string().refine((s) => cron.validate(s), {
  message: 'must be a cron expression such as "*/1 * * * *" (minute hour day month weekday)',
});

export const pipelineSchema = z.strictObject({
  /** `table` or `schema.table`; created by `gleaner migrate` when it does not exist. */
  table: z
    .string()
    .regex(
      /^([a-z_][a-z0-9_]{0,62}\.)?[a-z_][a-z0-9_]{0,62}$/,
      "must be table or schema.table, lower-case SQL identifiers",
    ),
  key: identifier.default("id"),
  inputs: z.array(identifier).min(1, "name the columns that identify a row"),
  outputs: z
    .record(identifier, outputSpec)
    .refine((o) => Object.keys(o).length > 0, { message: "declare at least one output column" }),
  prefix: z
    .string()
    .regex(/^[a-z_][a-z0-9_]{0,40}$/, "must be lower-case letters, digits and _")
    .default("enrichment_"),
  min_confidence: z.number().min(0).max(1).default(0.7),
  low_confidence_retry_after: boundedDuration(STORED_MAX).prefault("1h"),
  /** Values below this confidence are listed in <schema>.review_queue for a person to check. */
  review_below: z.number().min(0).max(1).default(0.6),
  on_input_change: z.enum(["reprocess", "ignore"]).default("reprocess"),
  /** Rows produced by an older pipeline version: re-run them gradually, or leave them. */
  on_version_change: z.enum(["reprocess", "ignore"]).default("ignore"),
  /** on_version_change: reprocess: how many older-version rows are released per hour. */
  drift_rows_per_hour: z.number().int().min(1).max(1_000_000).default(1000),
  schedule: cronExpression.default("* * * * *"),
  batch_size: z.number().int().min(1).max(500).default(10),
  /** Characters of field values one row puts in a batch prompt; longer values are cut. */
  max_row_input_chars: z.number().int().min(100).max(1_000_000).default(8000),
  /** Rows per graphile-worker job; a job runs its rows' LLM batches in parallel. Defaults to
   * 20 x batch_size for `llm` stages only, 10 x otherwise (load-config.ts defaultJobSize): fewer,
   * larger jobs cost less queue and database overhead per row (docs/configuration.md). */
  job_size: z.number().int().min(1).max(5000).optional(),
  /** At most this many rows are claimed by one sweep tick. */
  sweep_limit: z.number().int().min(1).max(1_000_000).default(10_000),
  /** A running row whose worker stops renewing this lease is taken back by the sweep. */
  lease: boundedDuration(TIMER_MAX, atLeast(1000, "1s")).prefault("5m"),
  /** A queued row whose job has not started within this time is enqueued again. */
  queue_timeout: boundedDuration(STORED_MAX, atLeast(1000, "1s")).prefault("30m"),
  retry,
  stages: z.array(stage).min(1, "a pipeline needs at least one stage"),
  /** A CSV file (header = column names) loaded into the table when `gleaner migrate` creates it. */
  seed: z.string().min(1).optional(),
  /** Spending caps of this pipeline's paid calls (src/config/budget-schema.ts). */
  budget: budgetSchema.optional(),
  /** The escalation ladder for rows with gaps (src/config/escalation-schema.ts). */
  escalate: escalationSchema.optional(),
  /** Apply the confidence mapping `gleaner eval` learnt for this pipeline when values settle. */
  calibrate: z.boolean().default(false),
  /** How `gleaner eval` compares values with a golden set (src/config/eval-schema.ts). */
  eval: evalSchema.prefault({}),
  /** Values a person approved or edited become few-shot examples in the extraction prompts. */
  examples: z.boolean().default(false),
  /** Tokens the examples may take in one prompt (default 600); needs `examples: true`. */
  examples_max_tokens: z.number().int().min(20).max(100_000).optional(),
});

const backend = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9_.-]+$/, "must be letters, digits, _ . or -"),
  /** http or https only: anything else (file:, ftp:, javascript:) is never an LLM API. */
  base_url: z.url({
    protocol: /^https?$/,
    message: "must be an http or https URL such as https://api.openai.com/v1",
  }),
  api_key: z.string().optional(),
  model: z.string().min(1),
  timeout: boundedDuration(TIMER_MAX, atLeast(100, "100ms")).prefault("60s"),
  max_concurrency: z.number().int().min(1).max(1024).default(16),
  /** The lowest the adaptive limit goes on 429s and errors; 1 when unset. */
  min_concurrency: z.number().int().min(1).max(1024).optional(),
  structured_output: z.enum(["auto", "json_schema", "json_object", "none"]).default("auto"),
  temperature: z.number().min(0).max(2).optional(),
  headers: z.record(z.string(), z.string()).optional(),
  query: z.record(z.string(), z.string()).optional(),
  price: z
    .strictObject({
      input_per_million: z.number().min(0),
      output_per_million: z.number().min(0),
    })
    .optional(),
  /**
   * An optional backend that cannot work — a hosted API (not loopback or a private address) with
   * no api_key and no headers — is switched off instead of failing every call: stages run without
   * it (see docs/configuration.md). The offline demo relies on it.
   */
  optional: z.boolean().default(false),
  /**
   * `batch`: calls of sweeps go through the OpenAI Batch API (half the price, answered within
   * 24 h) instead of live; see docs/configuration.md "Batch mode".
   */
  mode: z.enum(["live", "batch"], { message: "must be live or batch" }).default("live"),
  /** Batch mode: how long requests gather before they are submitted as one batch. */
  batch_window: boundedDuration(TIMER_MAX, atLeast(1, "1ms")).prefault("10m"),
  /** Batch mode: the most requests in one batch (the Batch API takes at most 50,000). */
  batch_limit: z.number().int().min(1).max(50_000).default(50_000),
});

const searchProvider = z.strictObject({
  provider: z.enum(["serper", "brave", "tavily", "searxng", "local"], {
    message: "must be one of serper, brave, tavily, searxng, local",
  }),
  /** Defaults to the public API for serper, brave and tavily; required for searxng. */
  base_url: z.string().optional(),
  api_key: z.string().optional(),
  timeout: boundedDuration(TIMER_MAX, atLeast(100, "100ms")).prefault("15s"),
  /** The most results asked per query (some providers bill by it). */
  limit: z.number().int().min(1).max(100).default(10),
  max_concurrency: z.number().int().min(1).max(256).default(4),
  /** `local`: the corpus searched; defaults to the provider's name. */
  corpus: identifier.optional(),
  /** `local`: a folder of .html/.md/.txt files indexed at start and served on the HTTP port. */
  folder: z.string().min(1).optional(),
  /** USD per request, counted against the budgets like an LLM call's cost. */
  price: z.number().min(0).max(1000).optional(),
});

const crawl = z
  .strictObject({
    user_agent: z.string().min(1).optional(),
    /** Hosts (`intranet.corp`, `*.corp.example`), addresses and CIDR ranges the SSRF guard lets
     * through. Everything non-public is refused otherwise. */
    allow: z.array(z.string().min(1)).default([]),
    javascript: z.enum(["always", "never", "auto"]).default("auto"),
    /** All redirect hops of one fetch get twice this: half a timer's maximum. */
    timeout: boundedDuration(CRAWL_TIMEOUT_MAX, atLeast(100, "100ms")).prefault("15s"),
    max_bytes: z
      .number()
      .int()
      .min(1024)
      .max(100 * 1024 * 1024)
      .default(5 * 1024 * 1024),
    max_redirects: z.number().int().min(0).max(20).default(5),
    /** Pages fetched within this time are served from the shared page cache. */
    cache_ttl: boundedDuration(STORED_MAX).prefault("1d"),
    robots: z.boolean().default(true),
    per_host_concurrency: z.number().int().min(1).max(64).default(2),
    per_host_delay: boundedDuration(TIMER_MAX).prefault("500ms"),
    browser: z
      .strictObject({
        /** Default: Debian's chromium-headless-shell when installed, else /usr/bin/chromium. */
        executable_path: z.string().min(1).optional(),
        /** Pages rendered at once; 6 is where 2 cores saturate (bench/crawl-browser.ts). */
        contexts: z.number().int().min(1).max(32).default(6),
        /** A Playwright browser server to render on (`ws://host:port/path`) instead of a local
         * Chromium; its contexts still go through this process's guarded proxies. */
        endpoint: z
          .url({
            protocol: /^wss?$/,
            message:
              "must be a ws:// or wss:// URL of a Playwright browser server, such as ws://browsers:3000/abc (chromium.launchServer's wsEndpoint)",
          })
          .optional(),
        /** Where the guarded proxies listen, and the browser reaches them: an address of this
         * host that a remote browser can reach. Default 127.0.0.1. */
        proxy_host: z
          .union([z.ipv4(), z.ipv6()], {
            message:
              "must be an IP address of this host that the browser can reach, such as 10.0.0.5",
          })
          .default("127.0.0.1"),
      })
      .prefault({}),
  })
  .prefault({});

export const configSchema = z.strictObject({
  /** Falls back to the DATABASE_URL variable, then to an embedded PostgreSQL. */
  database_url: z.string().min(1).optional(),
  /** The direct connection that LISTENs for new rows: a transaction pooler (PgBouncer) does not
   * pass notifications on. Defaults to the main URL. */
  listen_url: z.string().min(1).optional(),
  /** Gleaner's own schema (migrations, counters). graphile-worker keeps its own. */
  schema: identifier.default("gleaner"),
  worker_schema: identifier.default("graphile_worker"),
  embedded: z
    .strictObject({
      data_dir: z.string().default(".gleaner/postgres"),
      port: z.number().int().min(1024).max(65535).default(54329),
    })
    .prefault({}),
  http: z
    .strictObject({
      host: z.string().default("127.0.0.1"),
      port: z.number().int().min(0).max(65535).default(9464),
    })
    .prefault({}),
  api: z
    .strictObject({
      /** Bearer tokens accepted by /v1/*. With none, only loopback clients may use the API. */
      tokens: z.array(z.string().min(16, "a token needs at least 16 characters")).default([]),
      max_rows_per_job: z.number().int().min(1).max(1_000_000).default(10_000),
      max_body_bytes: z
        .number()
        .int()
        .min(1024)
        .max(1_073_741_824)
        .default(10 * 1024 * 1024),
    })
    .prefault({}),
  worker: z
    .strictObject({
      /** Jobs run at once by one process; each job is one batch of rows. */
      concurrency: z.number().int().min(1).max(1000).default(16),
      poll_interval: boundedDuration(TIMER_MAX, atLeast(50, "50ms")).prefault("2s"),
      /** Jobs fetched ahead and held locked by this process (0: off). Faster under load, but
       * rows of jobs held by a worker that is killed wait for queue_timeout, not the lease. */
      local_queue: z.number().int().min(0).max(1000).default(0),
      /** graphile-worker's named prepared statements; off through a transaction pooler
       * (PgBouncer 1.18 does not keep them across transactions). */
      prepared_statements: z.boolean().default(true),
    })
    .prefault({}),
  llm: z
    .strictObject({
      backends: z.array(backend).default([]),
      /** Exported as gleaner_llm_budget_usd_per_hour; the cost alert fires above it. */
      budget_usd_per_hour: z.number().positive().optional(),
      /** Caps on what all pipelines together may spend (src/config/budget-schema.ts). */
      budget: budgetSchema.optional(),
      /** Validated answers are reused for this long (same model, messages and schema); 0s: off. */
      cache_ttl: boundedDuration(STORED_MAX).prefault("30d"),
    })
    .prefault({}),
  /** Adaptive (AIMD) concurrency per endpoint: LLM backends, search providers, crawled hosts. */
  concurrency: z
    .strictObject({
      /** Share each endpoint's limit among all Gleaner processes through PostgreSQL. */
      shared: z.boolean().default(true),
      sync_interval: boundedDuration(TIMER_MAX, atLeast(100, "100ms")).prefault("1s"),
      /** A window of calls with at least this success ratio raises the limit by 1. */
      increase_above: z.number().gt(0).max(1).default(0.95),
      /** A 429 or 503 multiplies the limit by this. */
      decrease_factor: z.number().gt(0).lt(1).default(0.5),
    })
    .prefault({}),
  search: z
    .strictObject({
      providers: z
        .record(
          z.string().regex(/^[a-z][a-z0-9_-]{0,40}$/, "must be lower-case letters, digits, _ or -"),
          searchProvider,
        )
        .default({}),
      /** Answers are reused for this long: reprocessing a row does not pay again. */
      cache_ttl: boundedDuration(STORED_MAX).prefault("7d"),
    })
    .prefault({}),
  crawl,
  pipelines: z
    .record(identifier, pipelineSchema)
    .refine((p) => Object.keys(p).length > 0, { message: "declare at least one pipeline" }),
});

export type RawConfig = z.output<typeof configSchema>;
export type RawPipeline = z.output<typeof pipelineSchema>;
export type RawStage = z.output<typeof stage>;
export type RawBackend = z.output<typeof backend>;
export type RawSearchProvider = z.output<typeof searchProvider>;
export type RawCrawl = z.output<typeof crawl>;
