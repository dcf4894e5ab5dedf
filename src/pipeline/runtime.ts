import type { AdaptiveConcurrency } from "../concurrency/adaptive-concurrency.ts";
import { createConfiguredConcurrency } from "../concurrency/configured-concurrency.ts";
import { llmEndpoint } from "../concurrency/endpoint-key.ts";
import type { GleanerConfig } from "../config/config-types.ts";
import type { Db } from "../db/connect-database.ts";
import { createBudgetGuard, type BudgetGuard } from "../budget/budget-guard.ts";
import { withLlmBudget } from "../budget/llm-budget.ts";
import { systemClock, type Clock } from "../core/clock.ts";
import { withAnswerCache } from "../llm/answer-cache.ts";
import { createLlmBackend } from "../llm/llm-backend.ts";
import { withBatchMode } from "../llm/batch/batch-mode-backend.ts";
import type { LlmBackend } from "../llm/llm-types.ts";
import { createStageRunner } from "../stages/create-stage-runner.ts";
import { createLlmAnswerStore } from "../sql/llm-cache.ts";
import { createResearchServices, type ResearchServices } from "../stages/research-services.ts";
import type { StageRunner } from "../stages/stage-runner.ts";
import { loadAdhocPipelines } from "./adhoc-pipelines.ts";
import {
  loadEveryInstalledPipeline,
  loadInstalledPipelines,
  type InstalledPipeline,
} from "./installed-pipeline.ts";
import { RuntimeEvents } from "./runtime-events.ts";

/** Everything a job needs, built once per process: pipelines, their stages, the backends. */
export interface Runtime {
  readonly config: GleanerConfig;
  readonly db: Db;
  /** The configured pipelines and the ad-hoc ones known so far (see ensurePipeline). */
  readonly pipelines: ReadonlyMap<string, PipelineRuntime>;
  readonly events: RuntimeEvents;
  /**
   * Adaptive concurrency limits per endpoint, shared with the other processes through
   * PostgreSQL (src/concurrency/); openGleaner starts and stops its sync.
   */
  readonly concurrency: AdaptiveConcurrency;
  /** Search providers, the crawler and the browser, shared by the research stages. */
  readonly research: ResearchServices;
  /** LLM backends by name, one per process, each limited by its endpoint's `concurrency`. */
  readonly backends: ReadonlyMap<string, LlmBackend>;
  /** The fleet-wide budgets and cost ledger every paid call goes through (src/budget/). */
  readonly budget: BudgetGuard;
  /**
   * A pipeline by name, loading an ad-hoc one that another process created after this one
   * started; undefined when there is no such pipeline.
   */
  ensurePipeline(name: string): Promise<PipelineRuntime | undefined>;
}

export interface PipelineRuntime {
  readonly pipeline: InstalledPipeline;
  readonly stages: readonly StageRunner[];
}

export async function createRuntime(
  config: GleanerConfig,
  db: Db,
  options: {
    concurrency?: AdaptiveConcurrency;
    /** URL prefixes this process serves itself (corpus folders), let through the SSRF guard. */
    ownPrefixes?: readonly string[];
    /** The budget windows' clock; tests move it to reach the next window. */
    clock?: Clock;
    /** Only the configured pipelines, not the API's ad-hoc ones (`gleaner eval`'s shadow run). */
    configuredOnly?: boolean;
  } = {},
): Promise<Runtime> {
  const installed = options.configuredOnly
    ? await loadInstalledPipelines(db, config)
    : await loadEveryInstalledPipeline(db, config);
  // Process-local limits unless the caller brings a (shared) registry.
  const concurrency = options.concurrency ?? createConfiguredConcurrency(config, undefined);
  const events = new RuntimeEvents();
  // One backend object per configured backend, shared by all stages, so its concurrency limit
  // holds across the whole process; behind the shared answer cache unless llm.cache_ttl is 0.
  const answers = config.llmCacheTtlMs > 0 ? createLlmAnswerStore(db, config.schema) : undefined;
  const clock = options.clock ?? systemClock;
  const budget = createBudgetGuard(db, config, {
    clock,
    onRefused: (pipeline, error) =>
      events.emit("budget:refused", { pipeline, scope: error.scope, window: error.kind }),
    onError: (error) => events.emit("research:warning", { message: error.message }),
  });
  const raw = new Map(
    config.backends.map((b) => {
      const bounds = { min: b.min_concurrency ?? 1, max: b.max_concurrency };
      const limiter = concurrency.limiter(llmEndpoint(b.name), bounds);
      const live = createLlmBackend(b, { limiter });
      // `mode: batch`: calls are queued for the Batch API (src/llm/batch/) instead of sent.
      const backend = b.mode === "batch" ? withBatchMode(live, b, db, config.schema) : live;
      return [b.name, { backend, config: b }] as const;
    }),
  );
  const cached = (backend: LlmBackend, b: (typeof config.backends)[number]): LlmBackend =>
    answers
      ? withAnswerCache(backend, b, answers, {
          ttlMs: config.llmCacheTtlMs,
          onLookup: (outcome) => events.emit("llm:cache", { backend: b.name, outcome }),
          onError: (error) => events.emit("research:warning", { message: error.message }),
        })
      : backend;
  // Every backend shared by all stages (its concurrency limit holds across the process); per
  // pipeline, each call goes through that pipeline's budget below the answer cache, so a cached
  // answer costs and reserves nothing.
  const backends = new Map<string, LlmBackend>(
    [...raw.values()].map((r) => [r.config.name, cached(r.backend, r.config)]),
  );
  const budgeted = (pipeline: InstalledPipeline): Map<string, LlmBackend> => {
    const settings = pipeline.budget ?? config.llmBudget;
    const downgrade =
      settings?.onBudget === "downgrade"
        ? settings.downgradeBackends.flatMap((n) => raw.get(n) ?? [])
        : [];
    return new Map(
      [...raw.values()].map((r) => [
        r.config.name,
        cached(
          withLlmBudget(
            r,
            budget,
            pipeline.name,
            clock,
            downgrade.filter((d) => d !== r),
          ),
          r.config,
        ),
      ]),
    );
  };
  const research = createResearchServices(config, db, events, {
    concurrency,
    ownPrefixes: options.ownPrefixes ?? [],
  });
  const build = async (pipeline: InstalledPipeline): Promise<PipelineRuntime> => {
    const stages: StageRunner[] = [];
    for (const stage of pipeline.stages)
      stages.push(await createStageRunner(stage, pipeline, budgeted(pipeline), research));
    return { pipeline, stages };
  };
  const pipelines = new Map<string, PipelineRuntime>();
  for (const pipeline of installed) pipelines.set(pipeline.name, await build(pipeline));

  const loading = new Map<string, Promise<PipelineRuntime | undefined>>();
  const ensurePipeline = (name: string): Promise<PipelineRuntime | undefined> => {
    const known = pipelines.get(name);
    if (known) return Promise.resolve(known);
    if (!name.startsWith("adhoc_")) return Promise.resolve(undefined);
    // Concurrent jobs of a new pipeline share one load.
    let pending = loading.get(name);
    if (!pending) {
      pending = (async () => {
        const [definition] = await loadAdhocPipelines(db, config, name);
        if (!definition) return undefined;
        const [pipeline] = await loadInstalledPipelines(db, { ...config, pipelines: [] }, [
          definition,
        ]);
        const entry = await build(pipeline as InstalledPipeline);
        pipelines.set(name, entry);
        return entry;
      })().finally(() => loading.delete(name));
      loading.set(name, pending);
    }
    return pending;
  };
  return {
    config,
    db,
    pipelines,
    events,
    concurrency,
    research,
    backends,
    budget,
    ensurePipeline,
  };
}
