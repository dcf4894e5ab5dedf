/**
 * Gleaner's public API, for embedding it in a program of your own or writing custom stages.
 * The command line (src/cli/main.ts) is built from these same parts.
 */
export { loadConfigFile, parseConfig } from "./config/load-config.ts";
export { ConfigError } from "./config/config-error.ts";
export type { GleanerConfig, PipelineConfig, StageConfig } from "./config/config-types.ts";
export { openGleaner, type Gleaner } from "./app/open-gleaner.ts";
export { migrate, type MigrateReport } from "./db/migrate.ts";
export { TableContractError } from "./db/table-contract-error.ts";
export { startWorker } from "./worker/start-worker.ts";
export { drain, type DrainProgress } from "./worker/drain.ts";
export { startScheduler, type Scheduler } from "./sweep/scheduler.ts";
export { sweepPipeline, type SweepResult } from "./sweep/sweep-pipeline.ts";
export { reprocessRows, type ReprocessFilter } from "./sql/reprocess-rows.ts";
export type {
  CustomRowResult,
  CustomStageContext,
  CustomStageFunction,
  CustomStageRow,
} from "./stages/custom-stage.ts";
export type { StageRunner, StageInputRow, StageChunkResult } from "./stages/stage-runner.ts";
export type { RowState, StageRecord, ColumnProvenance, ErrorRecord } from "./pipeline/row-state.ts";
