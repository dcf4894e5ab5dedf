import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { basename } from "node:path";
import type { WhenCondition } from "../config/config-schema.ts";
import type { LlmBackendConfig, PipelineConfig, StageConfig } from "../config/config-types.ts";
import { templateFields } from "../config/template-fields.ts";
import { contentHash } from "../core/content-hash.ts";
import { backendIdentity } from "../llm/answer-cache.ts";
import type { StageInputRow } from "../stages/stage-runner.ts";
import type { StageRecord } from "./row-state.ts";

/**
 * When a stage's earlier result still holds, so the stage need not run again for a row.
 *
 * Each stage record carries two hashes:
 * - `fingerprint`: the stage's own recipe — its config (prompt, templates, kind options, `when`),
 *   its backends' models and servers, the outputs and their schema it asks about, the pipeline
 *   settings it reads — and the fingerprints of the earlier stages it reads, so a change to one
 *   stage re-runs it and the stages after it that read it, not those before it;
 * - `input_hash`: exactly what the stage reads of the row — the fields its templates, inputs and
 *   `when` use (inputs, and outputs as earlier stages filled them) and the `data` of the earlier
 *   stages it reads (queries, search results, chosen URLs, crawled pages).
 *
 * A record that succeeded with the same fingerprint and input hash is reused; anything else runs
 * again. The reset trigger (src/db/pipeline-ddl.ts) removes only the records a user's change
 * makes wrong, and this decides for the rest. Records written before fingerprints existed fall
 * back to the pipeline `version`, which changes with any stage.
 */

/** Bumped when a stage kind's code changes what it produces from the same recipe and inputs. */
const RECIPE_REVISION = 1;

/** What a stage reads of a row: field names and the earlier stages whose `data` it reads. */
interface StageReads {
  readonly fields: readonly string[];
  readonly data: readonly string[];
  /** Outputs whose confidence its `when` tests. */
  readonly confidence: readonly string[];
}

/** Per pipeline object (they are frozen): every stage's reads, computed once. */
const readsCache = new WeakMap<PipelineConfig, ReadonlyMap<string, StageReads>>();

/** The pipeline with its stage fingerprints (see InstalledPipeline). */
export interface FingerprintedPipeline extends PipelineConfig {
  /** Stage name → its fingerprint. */
  readonly stageFingerprints: Readonly<Record<string, string>>;
}

/**
 * Every stage's fingerprint, in stage order. `backends` are the configured LLM backends: a
 * stage's recipe holds the models and servers of the backends it names.
 */
export function stageFingerprints(
  p: PipelineConfig,
  backends: readonly LlmBackendConfig[],
): Record<string, string> {
  const reads = stageReads(p);
  const out: Record<string, string> = {};
  p.stages.forEach((stage, index) => {
    const read = reads.get(stage.name) as StageReads;
    const upstream = p.stages
      .slice(0, index)
      .filter(
        (earlier) =>
          read.data.includes(earlier.name) || earlier.outputs.some((o) => read.fields.includes(o)),
      )
      .map((earlier) => out[earlier.name]);
    out[stage.name] = contentHash({
      revision: RECIPE_REVISION,
      recipe: ownRecipe(p, stage, backends),
      upstream,
    });
  });
  return out;
}

/** The hash of exactly what `stage` reads of this row (see the file comment). */
export function stageInputHash(
  p: PipelineConfig,
  stage: StageConfig,
  input: StageInputRow,
): string {
  const read = stageReads(p).get(stage.name) as StageReads;
  return contentHash({
    fields: Object.fromEntries(read.fields.map((f) => [f, input.fields[f] ?? null])),
    data: Object.fromEntries(read.data.map((d) => [d, input.data[d] ?? null])),
    // Only for a `when` testing confidence, so every other stage's hash stays as it was.
    ...(read.confidence.length > 0
      ? {
          confidence: Object.fromEntries(
            read.confidence.map((f) => [f, input.confidence?.[f] ?? 0]),
          ),
        }
      : {}),
  });
}

/** What a new record of `stage` for this row carries, to be reused later. */
export function reuseMarks(
  p: FingerprintedPipeline,
  stage: StageConfig,
  input: StageInputRow,
): { fingerprint: string; input_hash: string } {
  return {
    fingerprint: p.stageFingerprints[stage.name] as string,
    input_hash: stageInputHash(p, stage, input),
  };
}

/**
 * Whether the row's record of `stage` can stand instead of running it: it succeeded, for the
 * same recipe, from the same inputs.
 */
export function canReuse(
  p: FingerprintedPipeline & { readonly version: string },
  stage: StageConfig,
  record: StageRecord | undefined,
  input: StageInputRow,
): boolean {
  if (!record || record.status !== "ok") return false;
  if (record.fingerprint === undefined) return record.version === p.version;
  return (
    record.fingerprint === p.stageFingerprints[stage.name] &&
    record.input_hash === stageInputHash(p, stage, input)
  );
}

/**
 * Whether a record's outputs are answers of the stage as configured now (settling counts only
 * those): its fingerprint is the stage's, or, for a record without one, its version the
 * pipeline's.
 */
export function isCurrentRecord(
  p: FingerprintedPipeline & { readonly version: string },
  stage: string,
  record: StageRecord,
): boolean {
  if (record.fingerprint === undefined) return record.version === p.version;
  return record.fingerprint === p.stageFingerprints[stage];
}

function stageReads(p: PipelineConfig): ReadonlyMap<string, StageReads> {
  const known = readsCache.get(p);
  if (known) return known;
  const reads = new Map<string, StageReads>();
  p.stages.forEach((stage, index) => {
    const earlier = p.stages.slice(0, index);
    // Everything a stage could read: the key, the inputs, and what earlier stages filled. The
    // outputs of this stage and later ones are results of the recipe, not inputs to it.
    const allFields = [p.key, ...p.inputs, ...earlier.flatMap((s) => s.outputs)];
    const own = ownReads(p, stage);
    const fields = own.fields === "all" ? allFields : own.fields;
    const data = own.data === "all" ? earlier.map((s) => s.name) : own.data;
    reads.set(stage.name, {
      fields: [...new Set([...fields, ...whenFields(stage.when)])].sort(),
      data: [...new Set(data)].sort(),
      confidence: [...new Set(whenFields(stage.when, true))].sort(),
    });
  });
  readsCache.set(p, reads);
  return reads;
}

/** What each kind reads, by its code in src/stages/. */
function ownReads(
  p: PipelineConfig,
  stage: StageConfig,
): { fields: readonly string[] | "all"; data: readonly string[] | "all" } {
  switch (stage.kind) {
    case "llm":
      return { fields: templateFields(stage.prompt), data: [] };
    case "custom":
      return { fields: "all", data: "all" };
    case "queries": {
      const templates = stage.templates.flatMap((t) => templateFields(t));
      if (!stage.llm) return { fields: templates, data: [] };
      // Without a prompt of its own the LLM is shown every field the row has.
      if (stage.llm.prompt === undefined) return { fields: "all", data: [] };
      return { fields: [...templates, ...templateFields(stage.llm.prompt)], data: [] };
    }
    case "search":
      return { fields: [], data: [stage.queriesStage] };
    case "select":
      return { fields: p.inputs, data: [stage.searchStage] };
    case "crawl":
      return {
        fields: stage.urlInput ? [stage.urlInput] : [],
        data: stage.urlsStage ? [stage.urlsStage] : [],
      };
    case "extract":
      return {
        fields: [...p.inputs, ...templateFields(stage.prompt ?? "")],
        data: [stage.pagesStage, stage.searchStage].filter((s): s is string => s !== undefined),
      };
  }
}

/** The outputs a `when` reads (only those whose confidence it tests, with `confidence`). */
function whenFields(when: WhenCondition | undefined, confidence = false): string[] {
  if (!when) return [];
  const nested = (w: WhenCondition) => whenFields(w, confidence);
  return [
    ...(when.output === undefined || (confidence && !when.confidence) ? [] : [when.output]),
    ...(when.all ?? []).flatMap(nested),
    ...(when.any ?? []).flatMap(nested),
    ...(when.not ? nested(when.not) : []),
  ];
}

/**
 * The stage's own recipe: its config (not its batch size: how many rows share a call does not
 * change the question asked of each), its backends as the models and servers they are, the
 * output specs it asks about and the pipeline settings its prompts read.
 */
function ownRecipe(
  p: PipelineConfig,
  stage: StageConfig,
  backends: readonly LlmBackendConfig[],
): unknown {
  const { batchSize: _batchSize, ...config } = stage;
  const models = (names: readonly string[]) =>
    names.map((name) => {
      const backend = backends.find((b) => b.name === name);
      return backend ? backendIdentity(backend) : { name };
    });
  const specs = (names: readonly string[]) => p.outputs.filter((o) => names.includes(o.name));
  switch (config.kind) {
    // Live or Batch API (`mode`) changes how a call is made, not its answer: not in the recipe.
    case "llm":
      return {
        ...config,
        mode: undefined,
        backends: models(config.backends),
        specs: specs(config.outputs),
        maxRowInputChars: p.maxRowInputChars,
        // The settings, not the examples themselves: see src/stages/few-shot-examples.ts.
        examples: p.examples,
      };
    case "extract":
      return {
        ...config,
        mode: undefined,
        backends: models(config.backends),
        specs: specs(config.outputs),
        inputs: p.inputs,
        maxRowInputChars: p.maxRowInputChars,
        examples: p.examples,
      };
    case "custom":
      return { ...config, module: moduleFingerprint(config.module), specs: specs(config.outputs) };
    case "queries":
      // Only its LLM is told which outputs are wanted.
      return config.llm
        ? {
            ...config,
            llm: { ...config.llm, backends: models(config.llm.backends) },
            specs: p.outputs,
          }
        : config;
    case "select":
      // Ranks by the outputs' words, and its LLM is told them; tells names from domains.
      return {
        ...config,
        ...(config.llm ? { llm: { ...config.llm, backends: models(config.llm.backends) } } : {}),
        specs: p.outputs,
        inputs: p.inputs,
      };
    case "search":
    case "crawl":
      return config;
  }
}

/** A custom stage's code is part of its recipe: its content, not where it is installed. */
function moduleFingerprint(path: string): string {
  if (!existsSync(path)) return basename(path);
  return createHash("sha256").update(readFileSync(path)).digest("hex");
}
