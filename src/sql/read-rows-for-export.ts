import { sql } from "kysely";
import type pg from "pg";
import { coerceError } from "../core/coerce-error.ts";
import { PG, pgErrorCode } from "../core/pg-error-codes.ts";
import type { Db } from "../db/connect-database.ts";
import type { InstalledPipeline } from "../pipeline/installed-pipeline.ts";

/** One row as `gleaner export` writes it. */
export interface ExportedRow {
  key: string;
  status: string;
  confidence: number | null;
  inputs: Record<string, unknown>;
  values: Record<string, unknown>;
  /** `state.columns`: per output, its confidence, sources and reason for a NULL. */
  columns: Record<string, { confidence?: number; sources?: string[]; reason?: string }> | null;
}

/** Rows fetched from the cursor at a time: what bounds the memory an export holds. */
export const EXPORT_FETCH_ROWS = 1000;

/**
 * Every row of the pipeline's table (or those matching the operator's `where`), in key order, a
 * batch of `fetchRows` at a time through a server-side cursor: an export of any size holds one
 * batch in memory, and the batches are one snapshot (REPEATABLE READ), so a row a worker settles
 * meanwhile is exported once, as it stood when the export began.
 *
 * Why it is safe: the transaction is set READ ONLY before the operator's `where` text is used,
 * so a condition that tries to write is refused by PostgreSQL; each FETCH has a statement
 * timeout; a plain read takes no lock a worker or a sweep waits for.
 */
export async function* readRowsForExport(
  db: Db,
  client: pg.PoolClient,
  p: InstalledPipeline,
  options: { where?: string; fetchRows?: number },
): AsyncGenerator<ExportedRow[]> {
  const c = p.columns;
  const fields = (cols: readonly string[]) =>
    sql.join(cols.map((col) => sql`${sql.lit(col)}::text, ${sql.ref(col)}`));
  const query = sql`
    declare gleaner_export no scroll cursor for
    select ${sql.ref(p.key)}::text as key, ${sql.ref(c.status)} as status,
      ${sql.ref(c.confidence)}::numeric::float8 as confidence,
      jsonb_build_object(${fields(p.inputs)}) as inputs,
      jsonb_build_object(${fields(p.outputs.map((o) => o.name))}) as values,
      ${sql.ref(c.state)} -> 'columns' as columns
    from ${sql.table(`${p.table.schema}.${p.table.name}`)}
    ${options.where ? sql`where (${sql.raw(options.where)})` : sql``}
    order by ${sql.ref(p.key)}
  `.compile(db);
  const fetch = `fetch forward ${options.fetchRows ?? EXPORT_FETCH_ROWS} from gleaner_export`;
  const whereFailed = (error: unknown): Error => {
    if (!options.where) return coerceError(error);
    const why =
      pgErrorCode(error) === PG.READ_ONLY_SQL_TRANSACTION
        ? "it tried to write; --where must only read"
        : coerceError(error).message;
    return new Error(`--where "${options.where}" failed: ${why}`, { cause: error });
  };
  await client.query("begin isolation level repeatable read read only");
  let open = true;
  try {
    await client.query("set local statement_timeout = '5min'");
    await client.query(query.sql, [...query.parameters]).catch((e: unknown) => {
      throw whereFailed(e);
    });
    for (;;) {
      const { rows } = await client.query<ExportedRow>(fetch).catch((e: unknown) => {
        throw whereFailed(e);
      });
      if (rows.length === 0) break;
      yield rows;
    }
    open = false;
    await client.query("commit");
  } finally {
    // An error, or a consumer that stopped early: the snapshot and cursor go with a rollback.
    if (open) await client.query("rollback").catch(() => {});
  }
}
