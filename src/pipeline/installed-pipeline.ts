import type { GleanerConfig, PipelineConfig } from "../config/config-types.ts";
import type { Db } from "../db/connect-database.ts";
import { stateColumns, type StateColumns } from "../db/state-columns.ts";
import { PG, pgErrorCode } from "../core/pg-error-codes.ts";
import { loadAdhocPipelines } from "./adhoc-pipelines.ts";
import { NotMigratedError } from "./not-migrated-error.ts";
import { stageFingerprints, type FingerprintedPipeline } from "./stage-reuse.ts";

/** A pipeline whose table `gleaner migrate` has installed: config plus what the database says. */
export interface InstalledPipeline extends FingerprintedPipeline {
  /** format_type() of the key column, used to cast job payload keys back. */
  readonly keyType: string;
  readonly columns: StateColumns;
}

/** The configured pipelines, plus every ad-hoc pipeline created through the API. */
export async function loadInstalledPipelines(
  db: Db,
  config: GleanerConfig,
  adhoc: readonly PipelineConfig[] = [],
): Promise<InstalledPipeline[]> {
  const rows = await db
    .withSchema(config.schema)
    .selectFrom("pipelines")
    .selectAll()
    .execute()
    .catch((error: unknown) => {
      throw new NotMigratedError(config.pipelines[0]?.name ?? "(none)", "is not installed", {
        cause: error,
      });
    });
  return [...config.pipelines, ...adhoc].map((p) => {
    const row = rows.find((r) => r.name === p.name);
    if (!row) throw new NotMigratedError(p.name, "is not installed");
    if (row.table_schema !== p.table.schema || row.table_name !== p.table.name)
      throw new NotMigratedError(p.name, "changed table since it was installed");
    return Object.freeze({
      ...p,
      keyType: row.key_type,
      columns: stateColumns(p),
      stageFingerprints: Object.freeze(stageFingerprints(p, config.backends)),
    });
  });
}

/** The configured pipelines and the ad-hoc ones, as installed: what the runtime and status run on. */
export async function loadEveryInstalledPipeline(
  db: Db,
  config: GleanerConfig,
): Promise<InstalledPipeline[]> {
  const adhoc = await loadAdhocPipelines(db, config).catch((error: unknown) => {
    // Migration 000005 (the ad-hoc pipelines' table) not applied yet.
    if (pgErrorCode(error) === PG.UNDEFINED_TABLE)
      throw new NotMigratedError(config.pipelines[0]?.name ?? "(none)", "is not installed", {
        cause: error,
      });
    throw error;
  });
  return loadInstalledPipelines(db, config, adhoc);
}
