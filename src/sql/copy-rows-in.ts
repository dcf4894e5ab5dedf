import { sql } from "kysely";
import type pg from "pg";
import { PG, pgErrorCode } from "../core/pg-error-codes.ts";
import type { Db } from "../db/connect-database.ts";
import { copyFromStdin } from "../db/copy-from-stdin.ts";
import type { InstalledPipeline } from "../pipeline/installed-pipeline.ts";

/** A column of the pipeline's table as `gleaner import` may fill it. */
export interface ImportableColumn {
  name: string;
  type: string;
  /** It has a default (an identity, a sequence, an expression): a CSV may leave it out. */
  defaulted: boolean;
  notNull: boolean;
}

/**
 * The columns of the pipeline's table a CSV may fill: every column but Gleaner's state columns
 * (those belong to the sweep; a new row gets them from their defaults). A catalog read.
 */
export async function importableColumns(db: Db, p: InstalledPipeline): Promise<ImportableColumn[]> {
  const state = new Set(Object.values(p.columns));
  const { rows } = await sql<ImportableColumn>`
    select a.attname as name, format_type(a.atttypid, a.atttypmod) as type,
      (a.atthasdef or a.attidentity <> '' or a.attgenerated <> '') as defaulted,
      a.attnotnull as "notNull"
    from pg_attribute a
    where a.attrelid = ${`${p.table.schema}.${p.table.name}`}::regclass
      and a.attnum > 0 and not a.attisdropped and a.attgenerated = ''
    order by a.attnum
  `.execute(db);
  return rows.filter((c) => !state.has(c.name));
}

/** Where in the CSV a refused value sits, from the server's `COPY t, line 3, column x` context. */
export interface CopyErrorPlace {
  line?: number;
  column?: string;
}

export function copyErrorPlace(error: unknown): CopyErrorPlace {
  const where = (error as { where?: unknown }).where;
  const text = typeof where === "string" ? where : "";
  const match = /COPY [^,]+, line (\d+)(?:, column ([^:]+))?/.exec(text);
  if (!match) return {};
  return {
    line: Number(match[1]),
    ...(match[2] ? { column: match[2] } : {}),
  };
}

/** A NOT NULL column left empty: the error names it, the context only the line. */
export function nullColumnOf(error: unknown): string | undefined {
  if (pgErrorCode(error) !== PG.NOT_NULL_VIOLATION) return undefined;
  const column = (error as { column?: unknown }).column;
  return typeof column === "string" ? column : undefined;
}

/**
 * Inserts the rows of a CSV (its header line first, naming `columns`) into the pipeline's table
 * with one `COPY … FROM STDIN`: PostgreSQL parses and converts every value itself, at COPY speed.
 * Returns the rows inserted.
 *
 * Why it is safe: COPY is one statement in its own transaction, so a refused value (wrong type,
 * an empty key, a duplicate key) rolls every row back and names its line; it takes the ROW
 * EXCLUSIVE lock an INSERT takes, so sweeps and workers go on (they claim with SKIP LOCKED and
 * never see uncommitted rows). New rows are pending through the table's defaults, and the
 * statement-level count trigger records them and wakes the sweep once, for the whole file.
 */
export async function copyRowsIn(
  client: pg.PoolClient,
  p: InstalledPipeline,
  columns: readonly string[],
  csv: AsyncIterable<Buffer>,
): Promise<number> {
  const ident = (name: string) => `"${name.replaceAll('"', '""')}"`;
  const text =
    `copy ${ident(p.table.schema)}.${ident(p.table.name)} (${columns.map(ident).join(", ")}) ` +
    `from stdin with (format csv, header true)`;
  const copy = copyFromStdin(text, csv);
  // The client queues it like any query and answers through its hooks; `done` settles with it.
  client.query(copy);
  return copy.done;
}
