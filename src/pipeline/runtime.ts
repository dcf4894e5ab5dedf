import type { AdaptiveConcurrency } from "../concurrency/adaptive-concurrency.ts";
import { createConfiguredConcurrency } from "../concurrency/configured-concurrency.ts";
import { llmEndpoint } from "../concurrency/endpoint-key.ts";
import type { GleanerConfig, StageConfig, StageMode } from "../config/config-types.ts";
import type { Db } from "../db/connect-database.ts";
import { createBudgetGuard, type BudgetGuard } from "../budget/budget-guard.ts";
import { withLlmBudget } from "../budget/llm-budget.ts";
import { systemClock, type Clock } from "../core/clock.ts";
import { withAnswerCache } from "../llm/answer-cache.ts";
import { createLlmBackend } from "../llm/llm-backend.ts";
import { withBatchMode } from "../llm/batch/batch-mode-backend.ts";
import type { LlmBackend } from "../llm/llm-types.ts";
import { createStageRunner } from "../stages/create-stage-runner.ts";
import { createRungRunners } from "../stages/rungs/create-rung-runners.ts";
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
  /** Budget windows and freshness (which values expired) read it; tests move it. */
  readonly clock: Clock;
  /**
   * A pipeline by name, loading an ad-hoc one that another process created after this one
   * started; undefined when there is no such pipeline.
   */
  ensurePipeline(name: string): Promise<PipelineRuntime | undefined>;
}

export interface PipelineRuntime {
  readonly pipeline: InstalledPipeline;
  readonly stages: readonly StageRunner[];
  /** The escalation ladder's rungs, in climbing order; none without a ladder. */
  readonly rungs: readonly StageRunner[];
}

export async function createRuntime(
  config: GleanerConfig,
  db: Db,
  options: {
    concurrency?: AdaptiveConcurrency;
    /** URL prefixes this process serves itself (corpus folders), let through the SSRF guard. */
    ownPrefixes?: readonly string[];
    /** The budget windows' and freshness's clock; tests move it. */
    clock?: Clock;
  } = {},
): Promise<Runtime> {
  const installed = await loadEveryInstalledPipeline(db, config);
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
  // Each backend live and, when it may use the Batch API (its own `mode: batch`, or a stage's),
  // queued for it (src/llm/batch/) instead of sent; one limiter for both.
  const modes = new Map(
    config.backends.map((b) => {
      const bounds = { min: b.min_concurrency ?? 1, max: b.max_concurrency };
      const limiter = concurrency.limiter(llmEndpoint(b.name), bounds);
      const live = createLlmBackend(b, { limiter });
      const batch =
        b.batch_window_ms === undefined ? undefined : withBatchMode(live, b, db, config.schema);
      return [b.name, { live, batch, config: b }] as const;
    }),
  );
  /** The backends as a stage of `mode` calls them: its override, else each backend's own mode. */
  const rawFor = (mode: StageMode | undefined) =>
    new Map(
      [...modes.values()].map((m) => {
        const wanted = mode ?? m.config.mode ?? "live";
        const backend = wanted === "batch" && m.batch ? m.batch : m.live;
        return [m.config.name, { backend, config: m.config }] as const;
      }),
    );
  const raw = rawFor(undefined);
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
  const budgeted = (
    pipeline: InstalledPipeline,
    mode: StageMode | undefined,
  ): Map<string, LlmBackend> => {
    const settings = pipeline.budget ?? config.llmBudget;
    const variant = mode === undefined ? raw : rawFor(mode);
    const downgrade =
      settings?.onBudget === "downgrade"
        ? settings.downgradeBackends.flatMap((n) => variant.get(n) ?? [])
        : [];
    return new Map(
      [...variant.values()].map((r) => [
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
    budget,
    clock,
  });
  const build = async (pipeline: InstalledPipeline): Promise<PipelineRuntime> => {
    const stages: StageRunner[] = [];
    const shared = budgeted(pipeline, undefined);
    for (const stage of pipeline.stages) {
      const mode = stageMode(stage);
      const backends = mode === undefined ? shared : budgeted(pipeline, mode);
      stages.push(await createStageRunner(stage, pipeline, backends, research));
    }
    // The rungs ask the extract stage's question again: they call its backends the same way.
    const extract = pipeline.stages.find((s) => s.name === pipeline.escalation?.extractStage);
    const rungMode = extract ? stageMode(extract) : undefined;
    const rungBackends = rungMode === undefined ? shared : budgeted(pipeline, rungMode);
    return { pipeline, stages, rungs: createRungRunners(pipeline, rungBackends, research) };
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
    clock,
    ensurePipeline,
  };
}

/** An llm or extract stage's `mode` override; undefined for other kinds and when unset. */
function stageMode(stage: StageConfig): StageMode | undefined {
  return stage.kind === "llm" || stage.kind === "extract" ? stage.mode : undefined;
}
