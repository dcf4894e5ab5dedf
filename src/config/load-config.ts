import { createHash } from "node:crypto";
import { existsSync, readFileSync, statSync } from "node:fs";
import { basename, dirname, resolve } from "node:path";
import type { z } from "zod";
import { parseAllowList } from "../core/address-ranges.ts";
import { defaultChromiumPath } from "../core/chromium-path.ts";
import { coerceError } from "../core/coerce-error.ts";
import type { OutputSpec } from "../core/output-types.ts";
import { ConfigError } from "./config-error.ts";
import { configSecrets } from "./config-secrets.ts";
import {
  configSchema,
  pipelineSchema,
  type RawBackend,
  type RawConfig,
  type RawPipeline,
  type WhenCondition,
} from "./config-schema.ts";
import type {
  EscalationSettings,
  GleanerConfig,
  LlmBackendConfig,
  PipelineConfig,
  SearchProviderSettings,
  StageConfig,
} from "./config-types.ts";
import { interpolateEnv } from "./interpolate-env.ts";
import { maskConfigError } from "./mask-config-error.ts";
import { readYaml } from "./read-yaml.ts";
import { checkColumnName, checkTableSchema } from "./reserved-names.ts";
import { resolveBackends } from "./resolve-backends.ts";
import { resolveEscalation } from "./resolve-escalation.ts";
import { resolveBudget } from "./resolve-budget.ts";
import { resolveEval } from "./resolve-eval.ts";
import { resolveSearchProvider } from "./resolve-search-provider.ts";
import { templateFields } from "./template-fields.ts";

/** Reads, interpolates, validates and freezes a config file. Throws ConfigError. */
export function loadConfigFile(file: string, env: NodeJS.ProcessEnv = process.env): GleanerConfig {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    throw new ConfigError("", `cannot read ${file}: ${coerceError(error).message}`, {
      cause: error,
      file,
    });
  }
  return parseConfig(text, { file, env });
}

export function parseConfig(
  text: string,
  options: { file?: string; env?: NodeJS.ProcessEnv } = {},
): GleanerConfig {
  const file = options.file;
  const js = readYaml(text, file);
  const env = options.env ?? process.env;
  const { value, secrets, fromEnv } = withFile(file, () => interpolateEnv(js ?? {}, env));
  // From here on every error may quote a value that came from the environment.
  const parsed = configSchema.safeParse(value);
  if (!parsed.success)
    throw maskConfigError(issuesToError(parsed.error, value, file), fromEnv, secrets);
  const allSecrets = configSecrets(parsed.data, secrets, env);
  const baseDir = file ? dirname(resolve(file)) : process.cwd();
  const config = withFile(file, () => {
    try {
      return resolveConfig(parsed.data, allSecrets, baseDir, file);
    } catch (error) {
      if (error instanceof ConfigError) throw maskConfigError(error, fromEnv, allSecrets);
      throw error;
    }
  });
  return deepFreeze(config);
}

function withFile<T>(file: string | undefined, fn: () => T): T {
  try {
    return fn();
  } catch (error) {
    if (error instanceof ConfigError && file && !error.file) {
      throw new ConfigError(error.path, error.problem, { cause: error.cause, file });
    }
    throw error;
  }
}

function issuesToError(error: z.ZodError, input: unknown, file: string | undefined): ConfigError {
  const lines = error.issues.map((issue) => {
    const path = issue.path.map((p) => (typeof p === "number" ? `[${p}]` : `.${String(p)}`));
    const key = path.join("").replace(/^\./, "");
    let message = issue.message;
    if (issue.code === "unrecognized_keys") {
      message = `unknown key${issue.keys.length > 1 ? "s" : ""} ${issue.keys.join(", ")} (check the spelling against docs/configuration.md)`;
    } else if (issue.code === "invalid_type" && valueAt(input, issue.path) === undefined) {
      // zod leaves issue.input out unless asked, so look the key up in what was parsed.
      message = `is required (${issue.expected})`;
    } else if (issue.code === "invalid_key") {
      // A bad record key (a column or pipeline name): say what a valid one looks like.
      message = issue.issues[0]?.message ?? message;
    }
    return { key, message };
  });
  const first = lines[0] ?? { key: "", message: "invalid" };
  const rest = lines.slice(1).map((l) => `\n  config ${l.key || "(root)"}: ${l.message}`);
  return new ConfigError(first.key, first.message + rest.join(""), { cause: error, file });
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let node = root;
  for (const part of path) {
    if (node === null || typeof node !== "object") return undefined;
    node = (node as Record<PropertyKey, unknown>)[part];
  }
  return node;
}

function resolveConfig(
  raw: RawConfig,
  secrets: string[],
  baseDir: string,
  file: string | undefined,
): GleanerConfig {
  if (raw.schema === raw.worker_schema)
    throw new ConfigError(
      "worker_schema",
      `is the same as schema ("${raw.schema}"): graphile-worker's tables and Gleaner's must live in different schemas; rename one`,
    );
  const { backends, backendsOff } = resolveBackends(raw.llm.backends);
  const activeBackends = backends.filter((b) => !backendsOff.has(b.name));
  const searchProviders: SearchProviderSettings[] = Object.entries(raw.search.providers).map(
    ([name, sp]) => resolveSearchProvider(name, sp, baseDir),
  );
  const pipelines = Object.entries(raw.pipelines).map(([name, p]) =>
    resolvePipeline(
      name,
      p,
      backends,
      baseDir,
      backendsOff,
      searchProviders.map((sp) => sp.name),
      raw.crawl.javascript,
    ),
  );
  checkSharedTables(pipelines);
  const backendsInUse = withStageBatchSettings(activeBackends, pipelines, raw.llm.backends);
  pipelines.forEach((p) =>
    checkTableSchema(p.table.schema, `pipelines.${p.name}.table`, [raw.schema, raw.worker_schema]),
  );
  return {
    file,
    databaseUrl: raw.database_url,
    listenUrl: raw.listen_url,
    schema: raw.schema,
    workerSchema: raw.worker_schema,
    embedded: { dataDir: resolve(baseDir, raw.embedded.data_dir), port: raw.embedded.port },
    http: raw.http,
    api: {
      tokens: raw.api.tokens,
      maxRowsPerJob: raw.api.max_rows_per_job,
      maxBodyBytes: raw.api.max_body_bytes,
    },
    worker: {
      concurrency: raw.worker.concurrency,
      pollIntervalMs: raw.worker.poll_interval,
      localQueue: raw.worker.local_queue,
      preparedStatements: raw.worker.prepared_statements,
    },
    backends: backendsInUse,
    backendsOff: [...backendsOff].map(([name, reason]) => ({ name, reason })),
    llmBudgetUsdPerHour: raw.llm.budget_usd_per_hour,
    llmBudget: resolveBudget(raw.llm.budget, "llm.budget", activeBackends),
    llmCacheTtlMs: raw.llm.cache_ttl,
    concurrency: {
      shared: raw.concurrency.shared,
      syncIntervalMs: raw.concurrency.sync_interval,
      increaseAbove: raw.concurrency.increase_above,
      decreaseFactor: raw.concurrency.decrease_factor,
    },
    search: { providers: searchProviders, cacheTtlMs: raw.search.cache_ttl },
    ...checkCrawlAndCorpora(raw, searchProviders),
    crawl: {
      userAgent: raw.crawl.user_agent,
      allow: raw.crawl.allow,
      javascript: raw.crawl.javascript,
      timeoutMs: raw.crawl.timeout,
      maxBytes: raw.crawl.max_bytes,
      maxRedirects: raw.crawl.max_redirects,
      cacheTtlMs: raw.crawl.cache_ttl,
      robots: raw.crawl.robots,
      perHostConcurrency: raw.crawl.per_host_concurrency,
      perHostDelayMs: raw.crawl.per_host_delay,
      browser: {
        executablePath: raw.crawl.browser.executable_path ?? defaultChromiumPath(),
        contexts: raw.crawl.browser.contexts,
        endpoint: raw.crawl.browser.endpoint,
        proxyHost: raw.crawl.browser.proxy_host,
      },
    },
    pipelines,
    secrets,
  };
}

/**
 * Checks what would otherwise fail at the first crawl: the allow list's syntax, and a corpus
 * folder served by Gleaner itself on a port that is not fixed. Returns nothing to merge.
 */
function checkCrawlAndCorpora(
  raw: RawConfig,
  providers: readonly SearchProviderSettings[],
): object {
  raw.crawl.allow.forEach((entry, i) => {
    try {
      parseAllowList([entry]);
    } catch (error) {
      throw new ConfigError(
        `crawl.allow[${i}]`,
        `"${entry}" is neither a host name, *.suffix, an IP address nor a CIDR range such as 10.0.0.0/8`,
        { cause: error },
      );
    }
  });
  const served = providers.find((p) => p.provider === "local" && p.folder && !p.baseUrl);
  if (served && raw.http.port === 0)
    throw new ConfigError(
      "http.port",
      `search provider ${served.name} serves its folder on the HTTP port, so the port must be fixed (not 0): its documents are indexed under that address`,
    );
  return {};
}

/**
 * Validates and resolves one pipeline definition outside a config file, exactly as if it were
 * written under `pipelines.<name>`: the API's ad-hoc requests use it. Throws ConfigError.
 */
export function resolvePipelineDefinition(
  name: string,
  definition: unknown,
  backends: readonly LlmBackendConfig[],
  config?: Pick<GleanerConfig, "search" | "crawl" | "backendsOff">,
): PipelineConfig {
  const parsed = pipelineSchema.safeParse(definition);
  if (!parsed.success) throw issuesToError(parsed.error, definition, undefined);
  return deepFreeze(
    resolvePipeline(
      name,
      parsed.data,
      backends,
      process.cwd(),
      new Map((config?.backendsOff ?? []).map((b) => [b.name, b.reason])),
      config?.search.providers.map((p) => p.name) ?? [],
      config?.crawl.javascript ?? "auto",
    ),
  );
}

function resolvePipeline(
  name: string,
  p: RawPipeline,
  backends: readonly LlmBackendConfig[],
  baseDir: string,
  backendsOff: ReadonlyMap<string, string> = new Map(),
  searchProviders: readonly string[] = [],
  crawlJavascript: "always" | "never" | "auto" = "auto",
): PipelineConfig {
  const at = `pipelines.${name}`;
  const [schemaName, tableName] = p.table.includes(".")
    ? (p.table.split(".") as [string, string])
    : ["public", p.table];
  checkTableSchema(schemaName, `${at}.table`, []);
  checkColumnName(p.key, `${at}.key`, p.prefix);
  const outputs: OutputSpec[] = Object.entries(p.outputs).map(([col, spec]) => ({
    name: col,
    type: spec.type,
    description: spec.description,
  }));
  const outputNames = new Set(outputs.map((o) => o.name));
  const taken = new Map<string, string>([[p.key, "key"]]);
  for (const [kind, cols] of [
    ["inputs", p.inputs],
    ["outputs", [...outputNames]],
  ] as const) {
    cols.forEach((col) => {
      const clash = taken.get(col);
      if (clash) throw new ConfigError(`${at}.${kind}`, `column "${col}" is also used as ${clash}`);
      // Stage answers are {id, <output>...} per row (json-schema-for-outputs.ts).
      if (kind === "outputs" && col === "id")
        throw new ConfigError(
          `${at}.outputs`,
          `an output cannot be named "id": stage answers use it for the row key; rename the column`,
        );
      checkColumnName(col, `${at}.${kind}`, p.prefix);
      taken.set(col, kind);
    });
  }

  const filled = new Set<string>();
  const stageNames = new Set<string>();
  /** The latest earlier stage of each kind, which a research stage reads from. */
  const latest = new Map<string, string>();
  const checkBackends = (names: readonly string[], path: string) =>
    names.forEach((b) => {
      if (!backends.some((known) => known.name === b))
        throw new ConfigError(
          path,
          `backend "${b}" is not declared in llm.backends (declared: ${backends.map((k) => k.name).join(", ") || "none"})`,
        );
    });
  /** The named backends that are on; an optional backend switched off is left out. */
  const usable = (names: readonly string[]) => names.filter((n) => !backendsOff.has(n));
  const checkInput = (column: string | undefined, path: string) => {
    if (column !== undefined && !p.inputs.includes(column) && column !== p.key)
      throw new ConfigError(path, `"${column}" is not an input (inputs: ${p.inputs.join(", ")})`);
  };
  const needEarlier = (kinds: string[], sat: string, kind: string): string => {
    for (const k of kinds) {
      const found = latest.get(k);
      if (found) return found;
    }
    throw new ConfigError(
      `${sat}.kind`,
      `a ${kind} stage reads the output of an earlier ${kinds.join(" or ")} stage: add one before it`,
    );
  };
  const stages: StageConfig[] = p.stages.map((s, i) => {
    const sat = `${at}.stages[${i}]`;
    if (stageNames.has(s.name)) throw new ConfigError(`${sat}.name`, `"${s.name}" is used twice`);
    stageNames.add(s.name);
    const outputsOfStage = "outputs" in s ? s.outputs : [];
    outputsOfStage.forEach((o) => {
      if (!outputNames.has(o))
        throw new ConfigError(
          `${sat}.outputs`,
          `"${o}" is not declared in ${at}.outputs (declared: ${[...outputNames].join(", ")})`,
        );
    });
    if (s.when) checkWhen(s.when, filled, `${sat}.when`);
    const common = {
      name: s.name,
      outputs: outputsOfStage,
      when: s.when,
      batchSize: s.batch_size ?? p.batch_size,
    };
    const allowed = new Set([...p.inputs, p.key, ...filled]);
    const checkTemplate = (template: string, path: string, extra: string[] = []) => {
      for (const ref of templateFields(template)) {
        if (!allowed.has(ref) && !extra.includes(ref))
          throw new ConfigError(
            path,
            `{{${ref}}} is neither an input nor an output of an earlier stage (allowed: ${[...allowed, ...extra].join(", ")})`,
          );
      }
    };
    // A system message is sent once for a whole batch of rows: it cannot name one row's fields.
    const checkChunkText = (text: string | undefined, path: string) => {
      const ref = templateFields(text ?? "")[0];
      if (ref !== undefined)
        throw new ConfigError(
          path,
          `{{${ref}}} names a row field, but the system message is shared by every row of a batch: move it to the prompt, which is rendered for each row`,
        );
    };
    let resolved: StageConfig;
    switch (s.kind) {
      case "llm":
        checkBackends(s.backends, `${sat}.backends`);
        if (usable(s.backends).length === 0)
          throw new ConfigError(
            `${sat}.backends`,
            `every backend it names is off: ${s.backends.map((b) => backendsOff.get(b)).join("; ")}. Set the key, or name another backend`,
          );
        checkTemplate(s.prompt, `${sat}.prompt`);
        checkChunkText(s.system, `${sat}.system`);
        resolved = {
          ...common,
          kind: "llm",
          backends: usable(s.backends),
          system: s.system,
          prompt: s.prompt,
          mode: s.mode,
        };
        break;
      case "custom": {
        const module = resolve(baseDir, s.module);
        if (!isFile(module))
          throw new ConfigError(
            `${sat}.module`,
            `${module} is not a file: the path is relative to the config file's folder (${baseDir})`,
          );
        resolved = { ...common, kind: "custom", module, exportName: s.export };
        break;
      }
      case "queries": {
        const templates = s.templates ?? [
          p.inputs.map((input) => `{{${input}}}`).join(" ") + " {{search_context}}",
        ];
        templates.forEach((t, j) => checkTemplate(t, `${sat}.templates[${j}]`, ["search_context"]));
        if (s.llm) checkBackends(s.llm.backends, `${sat}.llm.backends`);
        if (s.llm?.prompt) checkTemplate(s.llm.prompt, `${sat}.llm.prompt`, ["search_context"]);
        resolved = {
          ...common,
          kind: "queries",
          templates,
          searchContext: s.search_context,
          llm:
            s.llm && usable(s.llm.backends).length > 0
              ? { backends: usable(s.llm.backends), count: s.llm.count, prompt: s.llm.prompt }
              : undefined,
          maxQueries: s.max_queries,
        };
        break;
      }
      case "search":
        if (!searchProviders.includes(s.provider))
          throw new ConfigError(
            `${sat}.provider`,
            `search provider "${s.provider}" is not declared under search.providers (declared: ${searchProviders.join(", ") || "none"})`,
          );
        resolved = {
          ...common,
          kind: "search",
          provider: s.provider,
          resultsPerQuery: s.results_per_query,
          queriesStage: needEarlier(["queries"], sat, "search"),
        };
        break;
      case "select":
        checkInput(s.domain_input, `${sat}.domain_input`);
        if (s.llm) checkBackends(s.llm.backends, `${sat}.llm.backends`);
        resolved = {
          ...common,
          kind: "select",
          maxUrls: s.max_urls,
          domainInput: s.domain_input ?? p.inputs.find((c) => /domain|website|url|site/.test(c)),
          keywords: s.keywords,
          llm:
            s.llm && usable(s.llm.backends).length > 0
              ? { backends: usable(s.llm.backends) }
              : undefined,
          searchStage: needEarlier(["search"], sat, "select"),
        };
        break;
      case "crawl": {
        checkInput(s.url_input, `${sat}.url_input`);
        const urlsStage = latest.get("select") ?? latest.get("search");
        if (!urlsStage && s.url_input === undefined)
          throw new ConfigError(
            `${sat}.url_input`,
            "a crawl stage needs URLs: add a select (or search) stage before it, or name the input column holding a URL in url_input",
          );
        resolved = {
          ...common,
          kind: "crawl",
          maxDepth: s.max_depth,
          strategy: s.strategy,
          maxPages: s.max_pages,
          urlInput: s.url_input,
          javascript: s.javascript ?? crawlJavascript,
          rowTimeoutMs: s.row_timeout,
          followKeywords: s.follow_keywords,
          urlsStage,
        };
        break;
      }
      case "extract": {
        checkBackends(s.backends, `${sat}.backends`);
        const pagesStage = latest.get("crawl");
        const searchStage = latest.get("search");
        if (!pagesStage && !searchStage)
          throw new ConfigError(
            `${sat}.kind`,
            "an extract stage reads pages or search results: add a crawl or search stage before it",
          );
        if (usable(s.backends).length === 0 && !s.structured_data)
          throw new ConfigError(
            `${sat}.backends`,
            s.backends.length === 0
              ? "with structured_data off, name at least one LLM backend: nothing would extract"
              : `with structured_data off, an LLM must do the work, but ${s.backends.map((b) => backendsOff.get(b)).join("; ")}`,
          );
        if (s.prompt) checkTemplate(s.prompt, `${sat}.prompt`);
        checkChunkText(s.system, `${sat}.system`);
        resolved = {
          ...common,
          kind: "extract",
          backends: usable(s.backends),
          structuredData: s.structured_data,
          tokenBudget: s.token_budget,
          prompt: s.prompt,
          system: s.system,
          pagesStage,
          searchStage,
          mode: s.mode,
        };
        break;
      }
    }
    outputsOfStage.forEach((o) => filled.add(o));
    latest.set(s.kind, s.name);
    return resolved;
  });
  const unfilled = [...outputNames].filter((o) => !filled.has(o));
  if (unfilled.length > 0)
    throw new ConfigError(
      `${at}.stages`,
      `no stage fills ${unfilled.join(", ")}: add it to a stage's outputs or remove it from ${at}.outputs`,
    );
  if (p.examples_max_tokens !== undefined && !p.examples)
    throw new ConfigError(
      `${at}.examples_max_tokens`,
      "limits the few-shot examples, which are off: set examples: true or remove it",
    );
  if (p.retry.delays.length === 0)
    throw new ConfigError(`${at}.retry.delays`, "give at least one delay");

  const escalation = resolveEscalation(p.escalate, `${at}.escalate`, {
    stages,
    inputs: p.inputs,
    backends: backends.map((b) => b.name),
    backendsOff,
  });
  const version = pipelineVersion(outputs, stages, backends, escalation);
  return {
    name,
    table: { schema: schemaName, name: tableName },
    key: p.key,
    inputs: p.inputs,
    outputs,
    prefix: p.prefix,
    minConfidence: p.min_confidence,
    lowConfidenceRetryAfterMs: p.low_confidence_retry_after,
    reviewBelow: p.review_below,
    onInputChange: p.on_input_change,
    onVersionChange: p.on_version_change,
    driftRowsPerHour: p.drift_rows_per_hour,
    ttlMs: Object.fromEntries(
      Object.entries(p.outputs).flatMap(([col, spec]) =>
        spec.ttl === undefined ? [] : [[col, spec.ttl]],
      ),
    ),
    schedule: p.schedule,
    batchSize: p.batch_size,
    maxRowInputChars: p.max_row_input_chars,
    jobSize: p.job_size ?? defaultJobSize(p.batch_size, stages),
    sweepLimit: p.sweep_limit,
    leaseMs: p.lease,
    queueTimeoutMs: p.queue_timeout,
    retry: { maxAttempts: p.retry.max_attempts, delaysMs: p.retry.delays, jitter: p.retry.jitter },
    stages,
    seed: p.seed === undefined ? undefined : resolve(baseDir, p.seed),
    version,
    budget: resolveBudget(p.budget, `${at}.budget`, backends),
    escalation,
    calibrate: p.calibrate,
    eval: resolveEval(p.eval, `${at}.eval`, outputs, baseDir),
    examples: p.examples
      ? { maxTokens: p.examples_max_tokens ?? DEFAULT_EXAMPLES_MAX_TOKENS }
      : undefined,
  };
}

/** Tokens of few-shot examples in one prompt when examples_max_tokens is unset. */
const DEFAULT_EXAMPLES_MAX_TOKENS = 600;

function checkWhen(when: WhenCondition, earlier: Set<string>, path: string): void {
  if (when.output !== undefined && !earlier.has(when.output))
    throw new ConfigError(
      path,
      `"${when.output}" is not filled by an earlier stage (earlier outputs: ${[...earlier].join(", ") || "none"})`,
    );
  when.all?.forEach((w, i) => checkWhen(w, earlier, `${path}.all[${i}]`));
  when.any?.forEach((w, i) => checkWhen(w, earlier, `${path}.any[${i}]`));
  if (when.not) checkWhen(when.not, earlier, `${path}.not`);
}

/** Two pipelines may share a table only with distinct prefixes and disjoint outputs. */
function checkSharedTables(pipelines: PipelineConfig[]): void {
  const seen = new Map<string, PipelineConfig>();
  for (const p of pipelines) {
    const id = `${p.table.schema}.${p.table.name}`;
    const other = seen.get(id);
    if (other) {
      if (other.prefix === p.prefix)
        throw new ConfigError(
          `pipelines.${p.name}.prefix`,
          `pipelines ${other.name} and ${p.name} share table ${id}: give one of them another prefix`,
        );
      const both = p.outputs.filter((o) => other.outputs.some((x) => x.name === o.name));
      if (both.length > 0)
        throw new ConfigError(
          `pipelines.${p.name}.outputs`,
          `${both.map((o) => o.name).join(", ")} also filled by pipeline ${other.name} on the same table`,
        );
    }
    seen.set(id, p);
  }
}

/**
 * A live backend that a `mode: batch` stage names also submits to the Batch API: it gets its
 * `batch_window` and `batch_limit` (its own `mode` stays live for every other stage).
 */
function withStageBatchSettings(
  backends: readonly LlmBackendConfig[],
  pipelines: readonly PipelineConfig[],
  raw: readonly RawBackend[],
): LlmBackendConfig[] {
  const named = new Set(
    pipelines.flatMap((p) =>
      p.stages.flatMap((s) =>
        (s.kind === "llm" || s.kind === "extract") && s.mode === "batch" ? s.backends : [],
      ),
    ),
  );
  return backends.map((b) => {
    const source = raw.find((r) => r.name === b.name);
    if (b.mode === "batch" || !named.has(b.name) || !source) return b;
    return { ...b, batch_window_ms: source.batch_window, batch_max_requests: source.batch_limit };
  });
}

function pipelineVersion(
  outputs: OutputSpec[],
  stages: StageConfig[],
  backends: readonly LlmBackendConfig[],
  escalation: EscalationSettings | undefined,
): string {
  const recipe = {
    outputs,
    // The ladder is part of the recipe: a row's values may come from its rungs' pages and
    // models. Left out when off, so pipelines without one keep their version.
    ...(escalation
      ? {
          escalation: {
            ...escalation,
            backends: escalation.backends.map((b) => ({
              name: b,
              model: backends.find((k) => k.name === b)?.model,
            })),
          },
        }
      : {}),
    stages: stages.map((s) => {
      const models = (names: readonly string[]) =>
        names.map((b) => ({ name: b, model: backends.find((k) => k.name === b)?.model }));
      switch (s.kind) {
        // How calls are made (live or Batch API) does not change the answers.
        case "llm":
        case "extract":
          return { ...s, mode: undefined, backends: models(s.backends) };
        case "custom":
          return { ...s, module: moduleFingerprint(s.module) };
        case "queries":
        case "select":
          return s.llm ? { ...s, llm: { ...s.llm, backends: models(s.llm.backends) } } : s;
        default:
          return s;
      }
    }),
  };
  return createHash("sha256").update(JSON.stringify(recipe)).digest("hex").slice(0, 12);
}

/** A custom stage's code is part of the recipe: its content, not where it is installed. */
function moduleFingerprint(path: string): string {
  if (!existsSync(path)) return basename(path);
  return createHash("sha256").update(readFileSync(path)).digest("hex").slice(0, 16);
}

function isFile(path: string): boolean {
  return statSync(path, { throwIfNoEntry: false })?.isFile() ?? false;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === "object" && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

/**
 * `job_size` when the config leaves it out: 20 × batch_size for a pipeline of `llm` stages only
 * (a row costs a share of one call, and a job's chunks end together), 10 × otherwise (a research
 * or custom row may run for tens of seconds, and a job's rows settle together, when its slowest
 * is done; an escalation ladder needs research stages); at most 5000. docs/configuration.md
 * `job_size` has the measurement.
 */
function defaultJobSize(batchSize: number, stages: readonly StageConfig[]): number {
  const llmOnly = stages.every((s) => s.kind === "llm");
  return Math.min(5000, batchSize * (llmOnly ? 20 : 10));
}
