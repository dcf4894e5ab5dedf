import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { basename, dirname, resolve } from "node:path";
import { parseDocument } from "yaml";
import type { z } from "zod";
import type { LlmBackendConfig, OutputSpec } from "../llm/llm-types.ts";
import { ConfigError } from "./config-error.ts";
import {
  configSchema,
  pipelineSchema,
  type RawConfig,
  type RawPipeline,
  type WhenCondition,
} from "./config-schema.ts";
import type { GleanerConfig, PipelineConfig, StageConfig } from "./config-types.ts";
import { interpolateEnv } from "./interpolate-env.ts";
import { templateFields } from "./template-fields.ts";

/** Reads, interpolates, validates and freezes a config file. Throws ConfigError. */
export function loadConfigFile(file: string, env: NodeJS.ProcessEnv = process.env): GleanerConfig {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    throw new ConfigError("", `cannot read ${file}: ${(error as Error).message}`, {
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
  const doc = parseDocument(text, { prettyErrors: true });
  if (doc.errors.length > 0) {
    const first = doc.errors[0] as Error;
    throw new ConfigError("", `not valid YAML: ${first.message}`, { cause: first, file });
  }
  const { value, secrets } = withFile(file, () =>
    interpolateEnv(doc.toJS() ?? {}, options.env ?? process.env),
  );
  const parsed = configSchema.safeParse(value);
  if (!parsed.success) throw issuesToError(parsed.error, value, file);
  const baseDir = file ? dirname(resolve(file)) : process.cwd();
  const config = withFile(file, () => resolveConfig(parsed.data, secrets, baseDir, file));
  return deepFreeze(config);
}

function withFile<T>(file: string | undefined, fn: () => T): T {
  try {
    return fn();
  } catch (error) {
    if (error instanceof ConfigError && file && !error.file) {
      throw new ConfigError(error.path, error.message.replace(/^config [^:]+: /, ""), {
        cause: error.cause,
        file,
      });
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
  const backends: LlmBackendConfig[] = raw.llm.backends.map((b) => ({
    name: b.name,
    base_url: b.base_url.replace(/\/+$/, ""),
    // `${KEY:-}` gives "": that means no key (no Authorization header), as when it is unset.
    api_key: b.api_key === "" ? undefined : b.api_key,
    model: b.model,
    timeout_ms: b.timeout,
    max_concurrency: b.max_concurrency,
    structured_output: b.structured_output,
    temperature: b.temperature,
    headers: b.headers,
    query: b.query,
    price: b.price,
  }));
  const names = new Set<string>();
  backends.forEach((b, i) => {
    if (names.has(b.name))
      throw new ConfigError(`llm.backends[${i}].name`, `"${b.name}" is used twice`);
    names.add(b.name);
  });
  const pipelines = Object.entries(raw.pipelines).map(([name, p]) =>
    resolvePipeline(name, p, backends, baseDir),
  );
  checkSharedTables(pipelines);
  return {
    file,
    databaseUrl: raw.database_url,
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
    },
    backends,
    llmBudgetUsdPerHour: raw.llm.budget_usd_per_hour,
    pipelines,
    // API tokens are secrets even when written into the file itself.
    secrets: [...new Set([...secrets, ...raw.api.tokens])],
  };
}

/**
 * Validates and resolves one pipeline definition outside a config file, exactly as if it were
 * written under `pipelines.<name>`: the API's ad-hoc requests use it. Throws ConfigError.
 */
export function resolvePipelineDefinition(
  name: string,
  definition: unknown,
  backends: readonly LlmBackendConfig[],
): PipelineConfig {
  const parsed = pipelineSchema.safeParse(definition);
  if (!parsed.success) throw issuesToError(parsed.error, definition, undefined);
  return deepFreeze(resolvePipeline(name, parsed.data, backends, process.cwd()));
}

function resolvePipeline(
  name: string,
  p: RawPipeline,
  backends: readonly LlmBackendConfig[],
  baseDir: string,
): PipelineConfig {
  const at = `pipelines.${name}`;
  const [schemaName, tableName] = p.table.includes(".")
    ? (p.table.split(".") as [string, string])
    : ["public", p.table];
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
      if (col.startsWith(p.prefix) || col.endsWith("enriched_at"))
        throw new ConfigError(
          `${at}.${kind}`,
          `column "${col}" collides with Gleaner's state columns (prefix "${p.prefix}"); rename it or set ${at}.prefix`,
        );
      taken.set(col, kind);
    });
  }

  const filled = new Set<string>();
  const stageNames = new Set<string>();
  const stages: StageConfig[] = p.stages.map((s, i) => {
    const sat = `${at}.stages[${i}]`;
    if (stageNames.has(s.name)) throw new ConfigError(`${sat}.name`, `"${s.name}" is used twice`);
    stageNames.add(s.name);
    s.outputs.forEach((o) => {
      if (!outputNames.has(o))
        throw new ConfigError(
          `${sat}.outputs`,
          `"${o}" is not declared in ${at}.outputs (declared: ${[...outputNames].join(", ")})`,
        );
    });
    if (s.when) checkWhen(s.when, filled, `${sat}.when`);
    const common = {
      name: s.name,
      outputs: s.outputs,
      when: s.when,
      batchSize: s.batch_size ?? p.batch_size,
    };
    let resolved: StageConfig;
    if (s.kind === "llm") {
      s.backends.forEach((b) => {
        if (!backends.some((known) => known.name === b))
          throw new ConfigError(
            `${sat}.backends`,
            `backend "${b}" is not declared in llm.backends (declared: ${backends.map((k) => k.name).join(", ") || "none"})`,
          );
      });
      const allowed = new Set([...p.inputs, p.key, ...filled]);
      for (const [field, template] of [
        ["prompt", s.prompt],
        ["system", s.system ?? ""],
      ] as const) {
        for (const ref of templateFields(template)) {
          if (!allowed.has(ref))
            throw new ConfigError(
              `${sat}.${field}`,
              `{{${ref}}} is neither an input nor an output of an earlier stage (allowed: ${[...allowed].join(", ")})`,
            );
        }
      }
      resolved = {
        ...common,
        kind: "llm",
        backends: s.backends,
        system: s.system,
        prompt: s.prompt,
      };
    } else {
      resolved = {
        ...common,
        kind: "custom",
        module: resolve(baseDir, s.module),
        exportName: s.export,
      };
    }
    s.outputs.forEach((o) => filled.add(o));
    return resolved;
  });
  const unfilled = [...outputNames].filter((o) => !filled.has(o));
  if (unfilled.length > 0)
    throw new ConfigError(
      `${at}.stages`,
      `no stage fills ${unfilled.join(", ")}: add it to a stage's outputs or remove it from ${at}.outputs`,
    );
  if (p.retry.delays.length === 0)
    throw new ConfigError(`${at}.retry.delays`, "give at least one delay");

  const version = pipelineVersion(outputs, stages, backends);
  return {
    name,
    table: { schema: schemaName, name: tableName },
    key: p.key,
    inputs: p.inputs,
    outputs,
    prefix: p.prefix,
    minConfidence: p.min_confidence,
    lowConfidenceRetryAfterMs: p.low_confidence_retry_after,
    onInputChange: p.on_input_change,
    schedule: p.schedule,
    batchSize: p.batch_size,
    jobSize: p.job_size ?? p.batch_size * 5,
    sweepLimit: p.sweep_limit,
    leaseMs: p.lease,
    queueTimeoutMs: p.queue_timeout,
    retry: { maxAttempts: p.retry.max_attempts, delaysMs: p.retry.delays, jitter: p.retry.jitter },
    stages,
    version,
  };
}

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

function pipelineVersion(
  outputs: OutputSpec[],
  stages: StageConfig[],
  backends: readonly LlmBackendConfig[],
): string {
  const recipe = {
    outputs,
    stages: stages.map((s) =>
      s.kind === "llm"
        ? {
            ...s,
            backends: s.backends.map((b) => {
              const found = backends.find((k) => k.name === b);
              return { name: b, model: found?.model };
            }),
          }
        : { ...s, module: moduleFingerprint(s.module) },
    ),
  };
  return createHash("sha256").update(JSON.stringify(recipe)).digest("hex").slice(0, 12);
}

/** A custom stage's code is part of the recipe: its content, not where it is installed. */
function moduleFingerprint(path: string): string {
  if (!existsSync(path)) return basename(path);
  return createHash("sha256").update(readFileSync(path)).digest("hex").slice(0, 16);
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === "object" && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
