import { ConfigError } from "./config-error.ts";

/**
 * Names a pipeline's table and columns cannot take, checked when the config loads rather than
 * when `gleaner migrate` runs into them.
 */

/** PostgreSQL's system columns: every table has them, so no column can be called so. */
const SYSTEM_COLUMNS: ReadonlySet<string> = new Set([
  "tableoid",
  "xmin",
  "cmin",
  "xmax",
  "cmax",
  "ctid",
]);

/**
 * A key, input or output column: not a system column, and not one of Gleaner's state columns
 * (`<prefix>status`…, and `enriched_at`, whose name the default prefix leaves plain).
 */
export function checkColumnName(column: string, path: string, prefix: string): void {
  if (SYSTEM_COLUMNS.has(column))
    throw new ConfigError(
      path,
      `column "${column}" is a PostgreSQL system column (${[...SYSTEM_COLUMNS].join(", ")}): every table already has it; name the column otherwise`,
    );
  if (column.startsWith(prefix) || column.endsWith("enriched_at"))
    throw new ConfigError(
      path,
      `column "${column}" collides with Gleaner's state columns (prefix "${prefix}"); rename it or set ${path.replace(/\.[^.]+$/, "")}.prefix`,
    );
}

/**
 * A pipeline's table lives in a schema of the user's: not PostgreSQL's own (`pg_catalog`,
 * `pg_toast`, any `pg_*`, `information_schema`), nor Gleaner's or graphile-worker's (`taken`).
 */
export function checkTableSchema(schema: string, path: string, taken: readonly string[]): void {
  if (schema.startsWith("pg_") || schema === "information_schema")
    throw new ConfigError(
      path,
      `schema "${schema}" belongs to PostgreSQL: put the table in a schema of yours (e.g. public.<table>)`,
    );
  if (taken.includes(schema))
    throw new ConfigError(
      path,
      `schema "${schema}" is Gleaner's own (schema / worker_schema): put the table in a schema of yours (e.g. public.<table>)`,
    );
}
