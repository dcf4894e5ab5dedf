import { expectedAnswerTokens } from "../budget/expected-answer-tokens.ts";
import { SEARCH_MODEL } from "../budget/search-budget.ts";
import type {
  GleanerConfig,
  LlmStageConfig,
  SearchStageConfig,
  StageConfig,
} from "../config/config-types.ts";
import type { Db } from "../db/connect-database.ts";
import { answerCacheKey } from "../llm/answer-cache.ts";
import { countChatTokens, tokenizerFor } from "../llm/count-tokens.ts";
import { LlmError } from "../llm/llm-error.ts";
import type { LlmBackend, LlmBackendConfig, LlmRequest } from "../llm/llm-types.ts";
import type { InstalledPipeline } from "../pipeline/installed-pipeline.ts";
import { readStageHistory, type StageHistory } from "../sql/answer-history.ts";
import { createLlmAnswerStore } from "../sql/llm-cache.ts";
import { sampleDueRows } from "../sql/sample-due-rows.ts";
import { createLlmStage } from "../stages/llm-stage.ts";

export interface StageEstimate {
  stage: string;
  kind: string;
  backend: string | null;
  model: string | null;
  /** `rendered`: prompts rendered for the sample; `history`: the ledger's per-row averages;
   * `searches`: a search stage's queries per row times its provider's price per request;
   * `none`: nothing to go on (a research stage never run yet), or no paid call at all. */
  basis: "rendered" | "history" | "searches" | "none";
  tokenizer: string | null;
  rows: number;
  calls: number;
  input_tokens: number;
  output_tokens: number;
  /** Where the expected answer size comes from: `ledger` (measured) or `schema`. */
  answer_size_from: "ledger" | "schema" | null;
  /** Share of the sample's calls the LLM answer cache would answer (llm.cache_ttl). */
  cache_hit_ratio: number;
  cost_usd: number;
}

export interface PipelineEstimate {
  pipeline: string;
  matching_rows: number;
  sampled_rows: number;
  stages: StageEstimate[];
  total_usd: number;
}

/** A backend that records what it is asked and answers nothing: prompts rendered, never sent. */
function capturingBackend(config: LlmBackendConfig, into: LlmRequest[]): LlmBackend {
  return {
    name: config.name,
    model: config.model,
    inFlight: () => 0,
    complete(req) {
      into.push(req);
      return Promise.reject(
        new LlmError("estimate: not sent", { errorClass: "aborted", backend: config.name }),
      );
    },
  };
}

const priceOf = (b: LlmBackendConfig, input: number, output: number): number =>
  b.price ? (input * b.price.input_per_million + output * b.price.output_per_million) / 1e6 : 0;

/**
 * What `pipeline` would spend on the rows due now (or matching `where`): for each `llm` stage,
 * the real prompts rendered for a sample of rows (up to `limit`) and counted with the model's
 * tokenizer, answers sized from the ledger's history when there is one (else from the answer
 * schema), the backend's price, and the share the answer cache would serve; scaled to every
 * matching row. Research stages (their prompts need crawled pages) are priced from the ledger's
 * per-row history. Nothing is called, nothing written.
 */
export async function estimatePipeline(
  db: Db,
  config: GleanerConfig,
  p: InstalledPipeline,
  options: { where?: string; limit: number },
): Promise<PipelineEstimate> {
  const { matching, sample } = await sampleDueRows(db, p, options);
  const history = await readStageHistory(db, config.schema, p.name);
  const answers = config.llmCacheTtlMs > 0 ? createLlmAnswerStore(db, config.schema) : undefined;
  const scale = sample.length > 0 ? matching / sample.length : 0;
  const stages: StageEstimate[] = [];
  for (const stage of p.stages) {
    if (stage.kind === "search") {
      stages.push(estimateSearches(stage, p.stages, config, matching));
      continue;
    }
    const names = "backends" in stage ? stage.backends : [];
    const llm = "llm" in stage && stage.llm ? stage.llm.backends : [];
    const backend = config.backends.find((b) => b.name === (names[0] ?? llm[0]));
    const past = history.find((h) => h.stage === stage.name);
    const base = {
      stage: stage.name,
      kind: stage.kind,
      backend: backend?.name ?? null,
      model: backend?.model ?? null,
      tokenizer: backend ? describeTokenizer(backend.model) : null,
      rows: matching,
    };
    if (stage.kind === "llm" && backend && sample.length > 0) {
      stages.push({
        ...base,
        ...(await renderLlmStage(stage, p, backend, sample, past, answers, config.llmCacheTtlMs, {
          db,
          schema: config.schema,
        })),
        calls: Math.ceil(matching / stage.batchSize),
        rows: matching,
      });
      stages[stages.length - 1] = scaleEstimate(stages[stages.length - 1] as StageEstimate, scale);
      continue;
    }
    if (backend && past) {
      stages.push({
        ...base,
        basis: "history",
        calls: Math.ceil(matching / stage.batchSize),
        input_tokens: Math.round(past.inputTokensPerRow * matching),
        output_tokens: Math.round(past.outputTokensPerRow * matching),
        answer_size_from: "ledger",
        cache_hit_ratio: 0,
        cost_usd: past.costPerRow * matching,
      });
      continue;
    }
    stages.push({
      ...base,
      basis: "none",
      calls: 0,
      input_tokens: 0,
      output_tokens: 0,
      answer_size_from: null,
      cache_hit_ratio: 0,
      cost_usd: 0,
    });
  }
  return {
    pipeline: p.name,
    matching_rows: matching,
    sampled_rows: sample.length,
    stages,
    total_usd: stages.reduce((t, s) => t + s.cost_usd, 0),
  };
}

/**
 * A search stage: each row sends its queries stage's queries (templates plus LLM-written ones, at
 * most max_queries), each a request at the provider's `price`. The search cache's hits are not
 * counted: an upper bound, as a re-run's repeated queries cost nothing.
 */
function estimateSearches(
  stage: SearchStageConfig,
  all: readonly StageConfig[],
  config: GleanerConfig,
  matching: number,
): StageEstimate {
  const queries = all.find((s) => s.name === stage.queriesStage);
  const perRow =
    queries?.kind === "queries"
      ? Math.min(queries.maxQueries, queries.templates.length + (queries.llm?.count ?? 0))
      : 1;
  const price = config.search.providers.find((p) => p.name === stage.provider)?.price ?? 0;
  const calls = matching * perRow;
  return {
    stage: stage.name,
    kind: stage.kind,
    backend: stage.provider,
    model: SEARCH_MODEL,
    basis: price > 0 ? "searches" : "none",
    tokenizer: null,
    rows: matching,
    calls,
    input_tokens: 0,
    output_tokens: 0,
    answer_size_from: null,
    cache_hit_ratio: 0,
    cost_usd: calls * price,
  };
}

function describeTokenizer(model: string): string {
  const t = tokenizerFor(model);
  return t.fallback ? `${t.name} (fallback)` : t.name;
}

/** The sample's prompts for one llm stage, rendered by the stage itself, and their cost. */
async function renderLlmStage(
  stage: LlmStageConfig,
  p: InstalledPipeline,
  backend: LlmBackendConfig,
  sample: readonly { key: string; fields: Record<string, unknown> }[],
  past: StageHistory | undefined,
  answers: ReturnType<typeof createLlmAnswerStore> | undefined,
  cacheTtlMs: number,
  store: { db: Db; schema: string },
): Promise<Omit<StageEstimate, "stage" | "kind" | "backend" | "model" | "tokenizer" | "rows">> {
  const asked: LlmRequest[] = [];
  // With examples on, the prompts carry them as a run would (read, never recorded).
  const fewShot = p.examples && {
    ...store,
    pipeline: p,
    stage: stage.name,
    outputs: stage.outputs,
    maxTokens: p.examples.maxTokens,
    model: backend.model,
    readOnly: true,
  };
  const runner = createLlmStage(
    stage,
    p.outputs,
    [capturingBackend(backend, asked)],
    { maxRowInputChars: p.maxRowInputChars },
    fewShot || undefined,
  );
  const signal = new AbortController().signal;
  for (let i = 0; i < sample.length; i += stage.batchSize) {
    const chunk = sample.slice(i, i + stage.batchSize).map((r) => ({ ...r, data: {} }));
    await runner.run(chunk, { signal, pipeline: p.name, log: () => {} });
  }
  let input = 0;
  let output = 0;
  for (const req of asked) {
    input += countChatTokens(req.system, req.prompt, backend.model);
    const rows = req.purpose?.rowKeys.length ?? 1;
    output += past ? past.outputTokensPerRow * rows : expectedAnswerTokens(req.schema, rows);
  }
  let hits = 0;
  if (answers && asked.length > 0) {
    const keys = asked.map((req) => answerCacheKey(backend, req));
    const found = await answers.getMany(keys, cacheTtlMs);
    hits = keys.filter((k) => found.has(k)).length;
  }
  const hitRatio = asked.length > 0 ? hits / asked.length : 0;
  return {
    basis: "rendered",
    calls: asked.length,
    input_tokens: input,
    output_tokens: Math.round(output),
    answer_size_from: past ? "ledger" : "schema",
    cache_hit_ratio: hitRatio,
    cost_usd: priceOf(backend, input, output) * (1 - hitRatio),
  };
}

/** The sample's figures scaled to every matching row (calls are already counted for them). */
function scaleEstimate(e: StageEstimate, scale: number): StageEstimate {
  return {
    ...e,
    input_tokens: Math.round(e.input_tokens * scale),
    output_tokens: Math.round(e.output_tokens * scale),
    cost_usd: e.cost_usd * scale,
  };
}
