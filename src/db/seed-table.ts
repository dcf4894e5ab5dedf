import { readFileSync } from "node:fs";
import { parse } from "csv-parse/sync";
import { sql, type Kysely } from "kysely";
import type { PipelineConfig } from "../config/config-types.ts";
import type { GleanerDatabase } from "./database-types.ts";
import { coerceError } from "../core/coerce-error.ts";

/**
 * Loads a pipeline's `seed` CSV into its table, in the transaction that created the table: a
 * crash before commit leaves neither, so a seed is loaded exactly once. The header names the
 * columns; only the key and the inputs may be given (outputs start NULL: not yet enriched).
 */
export async function seedTable(
  trx: Kysely<GleanerDatabase>,
  pipeline: PipelineConfig,
): Promise<number> {
  const file = pipeline.seed;
  if (!file) return 0;
  const where = `pipelines.${pipeline.name}.seed (${file})`;
  let records: Record<string, string>[];
  try {
    records = parse<Record<string, string>>(readFileSync(file, "utf8"), {
      columns: true,
      skip_empty_lines: true,
      trim: true,
      bom: true,
    });
  } catch (error) {
    throw new Error(`${where}: cannot read the CSV: ${coerceError(error).message}`, {
      cause: error,
    });
  }
  if (records.length === 0) return 0;
  const allowed = new Set([pipeline.key, ...pipeline.inputs]);
  const columns = Object.keys(records[0] as Record<string, string>);
  const unknown = columns.filter((c) => !allowed.has(c));
  if (unknown.length > 0)
    throw new Error(
      `${where}: column ${unknown.join(", ")} is not the key or an input (allowed: ${[...allowed].join(", ")})`,
    );
  const table = sql.table(`${pipeline.table.schema}.${pipeline.table.name}`);
  const list = sql.join(columns.map((c) => sql.id(c)));
  // Empty CSV fields are NULL, not "": a missing domain is unknown, not an empty string.
  const rows = records.map((r) =>
    Object.fromEntries(columns.map((c) => [c, r[c] === "" ? null : r[c]])),
  );
  const result = await sql`
    insert into ${table} (${list})
    select ${list} from json_populate_recordset(null::${table}, ${JSON.stringify(rows)}::json)
  `.execute(trx);
  if (columns.includes(pipeline.key)) {
    // Keys given explicitly do not move an identity or serial counter: move it past them, or
    // the next plain INSERT would collide with a seeded key.
    const qualified = `"${pipeline.table.schema}"."${pipeline.table.name}"`;
    await sql`
      select setval(s.seq, greatest((select max(${sql.ref(pipeline.key)})::text::bigint from ${table}), 1))
      from (select pg_get_serial_sequence(${qualified}, ${pipeline.key}) as seq) s
      where s.seq is not null
    `.execute(trx);
  }
  return Number(result.numAffectedRows ?? 0);
}
