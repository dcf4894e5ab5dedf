import { sql, type Transaction } from "kysely";
import type { GleanerDatabase } from "../db/database-types.ts";
import type { InstalledPipeline } from "../pipeline/installed-pipeline.ts";

/**
 * Inserts a job's rows into the pipeline's table and links them to the job, in the caller's
 * transaction: either every row is submitted with its job, or none is.
 *
 * `jsonb_populate_recordset(null::table, ...)` converts each JSON value to the column's own type,
 * so an input declared integer in the user's table gets an integer (or a clear 22P02 error).
 * The rows start pending through the table's defaults, and the insert trigger wakes the sweep.
 */
export async function insertJobRows(
  trx: Transaction<GleanerDatabase>,
  schema: string,
  p: InstalledPipeline,
  jobId: string,
  rows: readonly Record<string, unknown>[],
): Promise<number> {
  const table = sql.table(`${p.table.schema}.${p.table.name}`);
  const inputs = sql.join(p.inputs.map((i) => sql.id(i)));
  const result = await sql<{ n: number }>`
    with inserted as (
      insert into ${table} (${inputs})
      select ${inputs} from jsonb_populate_recordset(null::${table}, ${JSON.stringify(rows)}::jsonb)
      returning ${sql.id(p.key)}::text as row_key
    ), linked as (
      insert into ${sql.id(schema, "api_job_rows")} (job_id, row_key)
      select ${jobId}::uuid, row_key from inserted
      returning 1
    )
    select count(*)::int as n from linked
  `.execute(trx);
  return result.rows[0]?.n ?? 0;
}

/**
 * The type of each input column of the pipeline's table, as format_type() writes it (a domain
 * gives its base type), so values can be checked against it before the insert. A catalog read.
 */
export async function inputColumnTypes(
  trx: Transaction<GleanerDatabase>,
  p: Pick<InstalledPipeline, "table" | "inputs">,
): Promise<Map<string, string>> {
  const result = await sql<{ name: string; type: string }>`
    select a.attname as name,
      case when t.typtype = 'd' then format_type(t.typbasetype, t.typtypmod)
           else format_type(a.atttypid, a.atttypmod) end as type
    from pg_attribute a
    join pg_type t on t.oid = a.atttypid
    where a.attrelid = to_regclass(format('%I.%I', ${p.table.schema}::text, ${p.table.name}::text))
      and a.attname = any(${p.inputs}::text[])
      and a.attnum > 0 and not a.attisdropped
  `.execute(trx);
  return new Map(result.rows.map((r) => [r.name, r.type]));
}
