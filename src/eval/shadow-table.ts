import { createHash } from "node:crypto";
import { sql } from "kysely";
import type { PipelineConfig } from "../config/config-types.ts";
import { PG_TYPE } from "../core/output-types.ts";
import type { Db } from "../db/connect-database.ts";
import { installPipelineTable } from "../db/install-pipeline-table.ts";
import { quoteIdent as q } from "../db/quote-identifier.ts";
import type { GoldenRow } from "./golden-set.ts";

/**
 * The pipeline `gleaner eval` runs instead of the user's: the same stages, outputs, retry and
 * budget, on a table of Gleaner's own (`<schema>.eval_<pipeline>`, or `…_against` for the
 * --against config), never the user's table. Its confidences stay raw (`calibrate` off): the
 * eval measures the model, and applies the stored mapping itself to report its effect.
 */
export function shadowPipeline(
  pipeline: PipelineConfig,
  schema: string,
  slot: "main" | "against",
): PipelineConfig {
  const name = shadowName(pipeline.name, slot);
  return Object.freeze({
    ...pipeline,
    name,
    table: Object.freeze({ schema, name }),
    seed: undefined,
    calibrate: false,
  });
}

/**
 * `eval_<pipeline>` (`eval_<pipeline>_against`), shortened with a hash past 40 characters so
 * that the names of its indexes and triggers (`gleaner_<name>_…`) stay whole.
 */
export function shadowName(pipeline: string, slot: "main" | "against"): string {
  const full = `eval_${pipeline}${slot === "against" ? "_against" : ""}`;
  if (full.length <= 40) return full;
  const hash = createHash("sha1").update(full).digest("hex").slice(0, 8);
  return `${full.slice(0, 31)}_${hash}`;
}

/**
 * Creates the shadow table afresh and loads the golden rows into it, in one transaction under
 * the pipeline's install lock (the one `gleaner migrate` takes): the rows of an earlier eval are
 * dropped with the table, so nothing of theirs is reused. The key is text (a golden set's keys
 * are whatever it says), inputs are text, outputs have their declared types; the state columns,
 * indexes and triggers come from the one pipeline DDL (src/db/pipeline-ddl.ts). Its record in
 * `<schema>.pipelines` is replaced, so the DDL is installed even when unchanged since last time.
 *
 * Why it is safe: the caller holds the eval lock of this shadow pipeline (one eval of it at a
 * time); the table is Gleaner's own, so no user statement waits on the drop.
 */
export async function loadShadowTable(
  db: Db,
  shadow: PipelineConfig,
  schema: string,
  rows: readonly GoldenRow[],
): Promise<void> {
  const table = `${q(shadow.table.schema)}.${q(shadow.table.name)}`;
  await db.transaction().execute(async (trx) => {
    await sql`select pg_advisory_xact_lock(hashtext(${"gleaner:install:" + shadow.name}))`.execute(
      trx,
    );
    await sql.raw(`drop table if exists ${table}`).execute(trx);
    await sql`delete from ${sql.table(`${schema}.pipelines`)} where name = ${shadow.name}`.execute(
      trx,
    );
    const columns = [
      `${q(shadow.key)} text primary key`,
      ...shadow.inputs.map((i) => `${q(i)} text`),
      ...shadow.outputs.map((o) => `${q(o.name)} ${PG_TYPE[o.type]}`),
    ];
    await sql.raw(`create table ${table} (${columns.join(", ")})`).execute(trx);
    await installPipelineTable(trx, shadow, schema);
    const names = [shadow.key, ...shadow.inputs];
    for (let i = 0; i < rows.length; i += 500) {
      const chunk = rows.slice(i, i + 500);
      await sql`
        insert into ${sql.table(`${shadow.table.schema}.${shadow.table.name}`)}
          (${sql.join(names.map((n) => sql.id(n)))})
        values ${sql.join(
          chunk.map(
            (r) => sql`(${sql.join([r.key, ...shadow.inputs.map((c) => r.inputs[c] ?? null)])})`,
          ),
        )}
      `.execute(trx);
    }
  });
}

/** A settled shadow row: its values (JSON, as to_jsonb writes them) and its state. */
export interface ShadowRow {
  key: string;
  row: Record<string, unknown>;
}

export async function readShadowRows(db: Db, shadow: PipelineConfig): Promise<ShadowRow[]> {
  const { rows } = await sql<ShadowRow>`
    select t.${sql.id(shadow.key)} as key, to_jsonb(t) as row
    from ${sql.table(`${shadow.table.schema}.${shadow.table.name}`)} t
  `.execute(db);
  return rows;
}
