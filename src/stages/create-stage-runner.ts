import type { StageConfig } from "../config/config-types.ts";
import type { LlmBackend } from "../llm/llm-types.ts";
import type { InstalledPipeline } from "../pipeline/installed-pipeline.ts";
import { createCrawlStage } from "./crawl-stage.ts";
import { createCustomStage } from "./custom-stage.ts";
import { createExtractStage } from "./extract-stage.ts";
import { createLlmStage, type FewShotSettings } from "./llm-stage.ts";
import { createQueriesStage } from "./queries-stage.ts";
import type { ResearchServices } from "./research-services.ts";
import { createSearchStage } from "./search-stage.ts";
import { createSelectStage } from "./select-stage.ts";
import { invalidStageData } from "./stage-data.ts";
import type { StageRunner } from "./stage-runner.ts";

/**
 * The runner of one configured stage, by kind. Rows whose stored data of an earlier stage is
 * malformed (stage-data.ts) fail with `stage_data_invalid` before the stage sees them.
 */
export async function createStageRunner(
  stage: StageConfig,
  pipeline: InstalledPipeline,
  backends: ReadonlyMap<string, LlmBackend>,
  research: ResearchServices,
): Promise<StageRunner> {
  const runner = await runnerOf(stage, pipeline, backends, research);
  return {
    ...runner,
    async run(rows, context) {
      const invalid = invalidStageData(stage, pipeline.stages, rows);
      if (invalid.size === 0) return runner.run(rows, context);
      const valid = rows.filter((row) => !invalid.has(row.key));
      const result =
        valid.length > 0
          ? await runner.run(valid, context)
          : { rows: new Map(), calls: [], usage: new Map() };
      for (const [key, failed] of invalid) result.rows.set(key, failed);
      return result;
    },
  };
}

async function runnerOf(
  stage: StageConfig,
  pipeline: InstalledPipeline,
  backends: ReadonlyMap<string, LlmBackend>,
  research: ResearchServices,
): Promise<StageRunner> {
  const pick = (names: readonly string[]) => names.map((name) => backends.get(name) as LlmBackend);
  // pipelines.<p>.examples: reviewed values as few-shot examples in the extraction prompts.
  const fewShot = (names: readonly string[]): FewShotSettings | undefined =>
    pipeline.examples && names.length > 0
      ? {
          db: research.db,
          schema: research.schema,
          pipeline,
          stage: stage.name,
          outputs: stage.outputs,
          maxTokens: pipeline.examples.maxTokens,
          model: pick(names)[0]?.model ?? "",
        }
      : undefined;
  switch (stage.kind) {
    case "llm":
      return createLlmStage(
        stage,
        pipeline.outputs,
        pick(stage.backends),
        pipeline,
        fewShot(stage.backends),
      );
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
        fewShot(stage.backends),
      );
  }
}
