import type { GleanerConfig } from "../config/config-types.ts";
import type { Db } from "../db/connect-database.ts";
import { createLlmBackend } from "../llm/llm-backend.ts";
import type { LlmBackend } from "../llm/llm-types.ts";
import { createCustomStage } from "../stages/custom-stage.ts";
import { createLlmStage } from "../stages/llm-stage.ts";
import type { StageRunner } from "../stages/stage-runner.ts";
import { loadInstalledPipelines, type InstalledPipeline } from "./installed-pipeline.ts";
import { RuntimeEvents } from "./runtime-events.ts";

/** Everything a job needs, built once per process: pipelines, their stages, the backends. */
export interface Runtime {
  readonly config: GleanerConfig;
  readonly db: Db;
  readonly pipelines: ReadonlyMap<string, PipelineRuntime>;
  readonly events: RuntimeEvents;
  /** LLM backends by name, one per process (their concurrency limits are process-wide). */
  readonly backends: ReadonlyMap<string, LlmBackend>;
}

export interface PipelineRuntime {
  readonly pipeline: InstalledPipeline;
  readonly stages: readonly StageRunner[];
}

export async function createRuntime(config: GleanerConfig, db: Db): Promise<Runtime> {
  const installed = await loadInstalledPipelines(db, config);
  // One backend object per configured backend, shared by all stages, so its concurrency limit
  // holds across the whole process.
  const backends = new Map<string, LlmBackend>(
    config.backends.map((b) => [b.name, createLlmBackend(b)]),
  );
  const pipelines = new Map<string, PipelineRuntime>();
  for (const pipeline of installed) {
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
    pipelines.set(pipeline.name, { pipeline, stages });
  }
  return { config, db, pipelines, events: new RuntimeEvents(), backends };
}
