import { sql } from "kysely";
import type { Db } from "../db/connect-database.ts";
import {
  calibrationOf,
  type Calibration,
  type CalibrationPoints,
} from "../pipeline/confidence-calibration.ts";

/** One learnt mapping, as `gleaner eval` stores it (migrations/000015). */
export interface StoredCalibration {
  backend: string;
  column: string;
  points: CalibrationPoints;
  samples: number;
  ece_before: number;
  ece_after: number;
}

/**
 * A pipeline's mappings learnt for `version` (a primary-key range read, once per job of a
 * `calibrate: true` pipeline), and the version the stored ones were learnt for when that is
 * another: a mapping measured for another prompt, model or ladder says nothing of this one.
 */
export async function readCalibrations(
  db: Db,
  schema: string,
  pipeline: string,
  version: string,
): Promise<{ mappings: StoredCalibration[]; otherVersion?: string }> {
  const { rows } = await sql<StoredCalibration & { version: string }>`
    select backend, column_name as "column", points, samples, ece_before, ece_after, version
    from ${sql.table(`${schema}.calibrations`)}
    where pipeline = ${pipeline}
    order by backend, column_name
  `.execute(db);
  const mappings = rows.filter((r) => r.version === version).map(({ version: _, ...m }) => m);
  const other = rows.find((r) => r.version !== version)?.version;
  return { mappings, ...(other !== undefined ? { otherVersion: other } : {}) };
}

export async function loadCalibration(
  db: Db,
  schema: string,
  pipeline: string,
  version: string,
): Promise<{ calibration: Calibration; otherVersion?: string }> {
  const { mappings, otherVersion } = await readCalibrations(db, schema, pipeline, version);
  return { calibration: calibrationOf(mappings), ...(otherVersion ? { otherVersion } : {}) };
}

/**
 * Replaces a pipeline's mappings with those an eval just learnt, in one transaction: a job
 * reading them meanwhile sees the old set or the new one, never a mix. Pairs the eval did not
 * learn (too few samples) lose their old mapping too, since it described another recipe or data.
 * Two evals storing at once: the second's delete waits on the first's rows, then replaces them.
 */
export async function storeCalibrations(
  db: Db,
  schema: string,
  pipeline: string,
  version: string,
  mappings: readonly StoredCalibration[],
): Promise<void> {
  const table = sql.table(`${schema}.calibrations`);
  await db.transaction().execute(async (trx) => {
    await sql`delete from ${table} where pipeline = ${pipeline}`.execute(trx);
    for (const m of mappings) {
      await sql`
        insert into ${table}
          (pipeline, backend, column_name, points, samples, ece_before, ece_after, version)
        values (${pipeline}, ${m.backend}, ${m.column}, ${JSON.stringify(m.points)}::jsonb,
          ${m.samples}, ${m.ece_before}, ${m.ece_after}, ${version})
      `.execute(trx);
    }
  });
}
