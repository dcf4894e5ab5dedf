import type { Logger } from "pino";
import type { GleanerConfig, PipelineConfig } from "../config/config-types.ts";
import type { Database } from "../db/connect-database.ts";
import { calibrationOf } from "../pipeline/confidence-calibration.ts";
import { readCalibrations, storeCalibrations } from "../sql/calibrations.ts";
import { EvalUsageError } from "./eval-usage-error.ts";
import { readGoldenSet, type GoldenSet } from "./golden-set.ts";
import { runShadow } from "./run-shadow.ts";
import { MIN_CALIBRATION_SAMPLES, scoreEval, type EvalReport } from "./score-eval.ts";

export interface EvalOutcome {
  golden: GoldenSet;
  report: EvalReport;
  /** The --against config's report on the same rows. */
  against?: EvalReport;
  /** Whether the learnt mappings were stored (`calibrate: true` on the main config's pipeline). */
  stored: boolean;
}

/**
 * `gleaner eval`: reads the golden set, runs the pipeline of `config` over its rows in a shadow
 * table and scores it; with `against`, runs that config's pipeline of the same name over the
 * same rows and scores it by the same rules (the main config's `eval.columns`). With
 * `calibrate: true` on the main config's pipeline, the mappings learnt are stored for its runs.
 */
export async function runEval(options: {
  database: Database;
  config: GleanerConfig;
  pipeline: string;
  /** A .csv file or a schema.table; default: pipelines.<p>.eval.golden. */
  golden: string | undefined;
  limit?: number;
  against?: GleanerConfig;
  logger: Logger;
  timeoutMs?: number;
}): Promise<EvalOutcome> {
  const { database, config, logger } = options;
  const pipeline = findPipeline(config, options.pipeline);
  const source = options.golden ?? pipeline.eval.golden;
  if (!source)
    throw new EvalUsageError(
      `no golden set: pass --golden FILE.csv|TABLE or set pipelines.${pipeline.name}.eval.golden`,
    );
  const golden = await readGoldenSet(database.db, pipeline, source, options.limit);
  const other = options.against ? findPipeline(options.against, options.pipeline) : undefined;
  const one = async (cfg: GleanerConfig, p: PipelineConfig, slot: "main" | "against") => {
    logger.info(
      `eval ${p.name}${slot === "against" ? " (--against)" : ""}: ${golden.rows.length} rows from ${golden.source}`,
    );
    // The stored mapping was learnt from the main config's backends: it says nothing of
    // another config's, whose "after" is the in-sample one; nor does one learnt for another
    // version of this pipeline, which its jobs do not apply either.
    const stored =
      p.calibrate && slot === "main"
        ? (await readCalibrations(database.db, config.schema, p.name, p.version)).mappings
        : [];
    const run = await runShadow({
      database,
      main: config,
      config: cfg,
      pipeline: p,
      slot,
      rows: golden.rows,
      logger,
      ...(options.timeoutMs ? { timeoutMs: options.timeoutMs } : {}),
    });
    return scoreEval({
      pipeline: p,
      configFile: cfg.file,
      rules: pipeline.eval.columns,
      golden,
      run,
      stored: stored.length > 0 ? calibrationOf(stored) : undefined,
    });
  };
  const report = await one(config, pipeline, "main");
  const against =
    other && options.against ? await one(options.against, other, "against") : undefined;
  const store = pipeline.calibrate && report.calibration.learnt.length > 0;
  if (pipeline.calibrate && !store)
    logger.warn(
      `pipeline ${pipeline.name}: no backend and column had ${MIN_CALIBRATION_SAMPLES} judged values; the stored calibration is left as it was`,
    );
  if (store)
    await storeCalibrations(
      database.db,
      config.schema,
      pipeline.name,
      pipeline.version,
      report.calibration.learnt,
    );
  return { golden, report, ...(against ? { against } : {}), stored: store };
}

function findPipeline(config: GleanerConfig, name: string): PipelineConfig {
  const found = config.pipelines.find((p) => p.name === name);
  if (!found)
    throw new EvalUsageError(
      `no pipeline "${name}" in ${config.file ?? "the config"} (pipelines: ${config.pipelines.map((p) => p.name).join(", ")})`,
    );
  return found;
}
