import { sql } from "kysely";
import { coerceError } from "../core/coerce-error.ts";
import { PG, pgErrorCode } from "../core/pg-error-codes.ts";
import type { Db } from "../db/connect-database.ts";
import type { InstalledPipeline } from "../pipeline/installed-pipeline.ts";

export interface SampledRow {
  key: string;
  /** The key, inputs and outputs, as a stage reads them. */
  fields: Record<string, unknown>;
}

/**
 * The rows `gleaner estimate` prices: those due now (the next sweep's work), or those matching
 * the operator's `--where`, with how many there are and a sample of up to `limit` in due order.
 *
 * Why it is safe: it runs in a transaction set READ ONLY before the operator's text is used, with
 * a statement timeout, so a `--where` that tries to write (a function with side effects, a
 * data-modifying CTE smuggled in) is refused by PostgreSQL, and a slow one is cancelled. It takes
 * no lock beyond what a plain select takes.
 */
export async function sampleDueRows(
  db: Db,
  p: InstalledPipeline,
  options: { where?: string; limit: number },
): Promise<{ matching: number; sample: SampledRow[] }> {
  const table = sql.table(`${p.table.schema}.${p.table.name}`);
  const condition = options.where
    ? sql`(${sql.raw(options.where)})`
    : sql`${sql.ref(p.columns.nextAt)} <= now()`;
  const fields = sql.join(
    [p.key, ...p.inputs, ...p.outputs.map((o) => o.name)].map(
      (col) => sql`${sql.lit(col)}::text, ${sql.ref(col)}`,
    ),
  );
  try {
    return await db.transaction().execute(async (trx) => {
      await sql`set transaction read only`.execute(trx);
      await sql`set local statement_timeout = '60s'`.execute(trx);
      const count = await sql<{ n: string }>`
        select count(*)::text as n from ${table} where ${condition}
      `.execute(trx);
      const { rows } = await sql<{ key: string; fields: Record<string, unknown> }>`
        select ${sql.ref(p.key)}::text as key, jsonb_build_object(${fields}) as fields
        from ${table} where ${condition}
        order by ${sql.ref(p.columns.nextAt)} nulls last, ${sql.ref(p.key)}
        limit ${options.limit}
      `.execute(trx);
      return { matching: Number(count.rows[0]?.n ?? 0), sample: rows };
    });
  } catch (error) {
    if (!options.where) throw error;
    const cause = coerceError(error);
    const why =
      pgErrorCode(error) === PG.READ_ONLY_SQL_TRANSACTION
        ? "it tried to write; --where must only read"
        : pgErrorCode(error) === PG.QUERY_CANCELED
          ? "it ran longer than 60s"
          : cause.message;
    throw new Error(`--where "${options.where}" failed: ${why}`, { cause });
  }
}
