import type { StageConfig } from "../config/config-types.ts";
import type { LlmBackend } from "../llm/llm-types.ts";
import type { InstalledPipeline } from "../pipeline/installed-pipeline.ts";
import { createCrawlStage } from "./crawl-stage.ts";
import { createCustomStage } from "./custom-stage.ts";
import { createExtractStage } from "./extract-stage.ts";
import { createLlmStage } from "./llm-stage.ts";
import { createQueriesStage } from "./queries-stage.ts";
import type { ResearchServices } from "./research-services.ts";
import { createSearchStage } from "./search-stage.ts";
import { createSelectStage } from "./select-stage.ts";
import type { StageRunner } from "./stage-runner.ts";

/** The runner of one configured stage, by kind. */
export async function createStageRunner(
  stage: StageConfig,
  pipeline: InstalledPipeline,
  backends: ReadonlyMap<string, LlmBackend>,
  research: ResearchServices,
): Promise<StageRunner> {
  const pick = (names: readonly string[]) => names.map((name) => backends.get(name) as LlmBackend);
  switch (stage.kind) {
    case "llm":
      return createLlmStage(stage, pipeline.outputs, pick(stage.backends), pipeline);
    case "custom":
      return createCustomStage(stage, pipeline.outputs);
    case "queries":
      return createQueriesStage(stage, pipeline.outputs, pick(stage.llm?.backends ?? []));
    case "search":
      return createSearchStage(stage, research);
    case "select":
      return createSelectStage(
        stage,
        pipeline.inputs,
        pipeline.outputs,
        pick(stage.llm?.backends ?? []),
      );
    case "crawl":
      return createCrawlStage(stage, pipeline.outputs, research);
    case "extract":
      return createExtractStage(
        stage,
        pipeline.outputs,
        pipeline.inputs,
        pick(stage.backends),
        research,
        pipeline,
      );
  }
}
