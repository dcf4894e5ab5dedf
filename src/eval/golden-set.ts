import { readFileSync } from "node:fs";
import { parse } from "csv-parse/sync";
import { sql } from "kysely";
import type { PipelineConfig } from "../config/config-types.ts";
import { isCsvPath } from "../config/resolve-eval.ts";
import { coerceError } from "../core/coerce-error.ts";
import type { Db } from "../db/connect-database.ts";
import { EvalUsageError } from "./eval-usage-error.ts";

export interface GoldenRow {
  /** The key column's value when the set has one, else the row's number from 1. */
  key: string;
  /** Input values, as text (the shadow table's inputs are text). */
  inputs: Record<string, string | null>;
  /** Known values of the output columns the set has; empty or NULL: not known, not scored. */
  known: Record<string, unknown>;
}

export interface GoldenSet {
  /** Where it was read from, for the report. */
  source: string;
  rows: GoldenRow[];
  /** The outputs the set has a column for. */
  columns: string[];
}

/**
 * Reads a golden set: a CSV file (header = column names) or a table (`schema.table`, read as
 * JSON so typed values stay typed). It holds the pipeline's inputs, optionally its key, and the
 * known values of any of its outputs; other columns are ignored. At most `limit` rows, in file
 * order (a table: key order when it has the key column).
 */
export async function readGoldenSet(
  db: Db,
  pipeline: PipelineConfig,
  source: string,
  limit: number | undefined,
): Promise<GoldenSet> {
  const records = isCsvPath(source) ? readCsv(source) : await readTable(db, pipeline, source);
  const header = Object.keys(records[0] ?? {});
  const missing = pipeline.inputs.filter((i) => !header.includes(i));
  if (records.length === 0) throw new EvalUsageError(`golden set ${source} has no rows`);
  if (missing.length > 0)
    throw new EvalUsageError(
      `golden set ${source} has no column ${missing.join(", ")}: it needs the inputs of pipeline ${pipeline.name} (${pipeline.inputs.join(", ")})`,
    );
  const columns = pipeline.outputs.map((o) => o.name).filter((o) => header.includes(o));
  if (columns.length === 0)
    throw new EvalUsageError(
      `golden set ${source} has no output column of pipeline ${pipeline.name} to compare with (outputs: ${pipeline.outputs.map((o) => o.name).join(", ")})`,
    );
  const hasKey = header.includes(pipeline.key);
  const rows = records.slice(0, limit).map((r, i) => ({
    key:
      hasKey && r[pipeline.key] !== null && r[pipeline.key] !== ""
        ? String(r[pipeline.key])
        : String(i + 1),
    inputs: Object.fromEntries(
      pipeline.inputs.map((c) => [c, r[c] === null || r[c] === undefined ? null : textOf(r[c])]),
    ),
    known: Object.fromEntries(columns.map((c) => [c, r[c]])),
  }));
  const keys = new Set(rows.map((r) => r.key));
  if (keys.size !== rows.length)
    throw new EvalUsageError(`golden set ${source}: column ${pipeline.key} has a value twice`);
  return { source, rows, columns };
}

function readCsv(file: string): Record<string, unknown>[] {
  try {
    return parse<Record<string, unknown>>(readFileSync(file, "utf8"), {
      columns: true,
      skip_empty_lines: true,
      trim: true,
      bom: true,
    });
  } catch (error) {
    throw new EvalUsageError(`cannot read golden set ${file}: ${coerceError(error).message}`, {
      cause: error,
    });
  }
}

async function readTable(
  db: Db,
  pipeline: PipelineConfig,
  table: string,
): Promise<Record<string, unknown>[]> {
  if (!/^([a-z_][a-z0-9_]*\.)?[a-z_][a-z0-9_]*$/.test(table))
    throw new EvalUsageError(
      `--golden ${table} is neither a .csv file nor a table name (schema.table)`,
    );
  try {
    // Read-only, in the table's natural order or by the key; a plain read, nothing locked.
    const { rows } = await sql<{ row: Record<string, unknown> }>`
      select to_jsonb(t) as row from ${sql.table(table)} t
    `.execute(db);
    const records = rows.map((r) => r.row);
    const key = pipeline.key;
    if (records[0] && key in records[0])
      records.sort((a, b) => String(a[key]).localeCompare(String(b[key]), "en", { numeric: true }));
    return records;
  } catch (error) {
    throw new EvalUsageError(`cannot read golden table ${table}: ${coerceError(error).message}`, {
      cause: error,
    });
  }
}

function textOf(value: unknown): string {
  return typeof value === "string" ? value : JSON.stringify(value);
}
