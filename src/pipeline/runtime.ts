import type { GleanerConfig } from "../config/config-types.ts";
import type { Db } from "../db/connect-database.ts";
import { createLlmBackend } from "../llm/llm-backend.ts";
import type { LlmBackend } from "../llm/llm-types.ts";
import { createCustomStage } from "../stages/custom-stage.ts";
import { createLlmStage } from "../stages/llm-stage.ts";
import type { StageRunner } from "../stages/stage-runner.ts";
import { loadAdhocPipelines } from "./adhoc-pipelines.ts";
import {
  loadInstalledPipelines,
  NotMigratedError,
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
  /** LLM backends by name, one per process (their concurrency limits are process-wide). */
  readonly backends: ReadonlyMap<string, LlmBackend>;
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

export async function createRuntime(config: GleanerConfig, db: Db): Promise<Runtime> {
  const adhoc = await loadAdhocPipelines(db, config).catch((error: { code?: string }) => {
    /** undefined_table: migration 000005 not applied */
    if (error.code === "42P01")
      throw new NotMigratedError(config.pipelines[0]?.name ?? "(none)", "is not installed", {
        cause: error,
      });
    throw error;
  });
  const installed = await loadInstalledPipelines(db, config, adhoc);
  // One backend object per configured backend, shared by all stages, so its concurrency limit
  // holds across the whole process.
  const backends = new Map<string, LlmBackend>(
    config.backends.map((b) => [b.name, createLlmBackend(b)]),
  );
  const build = async (pipeline: InstalledPipeline): Promise<PipelineRuntime> => {
    const stages: StageRunner[] = [];
    for (const stage of pipeline.stages) {
      stages.push(
        stage.kind === "llm"
          ? createLlmStage(
              stage,
              pipeline.outputs,
              stage.backends.map((name) => backends.get(name) as LlmBackend),
            )
          : await createCustomStage(stage, pipeline.outputs),
      );
    }
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
  return { config, db, pipelines, events: new RuntimeEvents(), backends, ensurePipeline };
}
