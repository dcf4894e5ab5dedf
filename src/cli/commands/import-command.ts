import { stat } from "node:fs/promises";
import { coerceError } from "../../core/coerce-error.ts";
import type { InstalledPipeline } from "../../pipeline/installed-pipeline.ts";
import {
  copyErrorPlace,
  copyRowsIn,
  importableColumns,
  nullColumnOf,
  type ImportableColumn,
} from "../../sql/copy-rows-in.ts";
import { cliPipeline, openFromCli } from "../cli-context.ts";
import { countCsvLines, csvChunks, readCsvHeader } from "../csv-file.ts";
import { UsageError } from "../exit-codes.ts";
import { createProgressReporter } from "../progress-reporter.ts";

/**
 * `gleaner import PIPELINE FILE.csv [--json]`: inserts the file's rows into the pipeline's table
 * with one COPY (src/sql/copy-rows-in.ts), where they become pending like any inserted row. The
 * header is checked first (unknown, repeated or state columns, a missing key); a refused value
 * names its line and column and inserts nothing. Progress on stderr; the rows inserted on stdout.
 */
export async function importCommand(
  pipeline: string,
  file: string,
  options: { config: string; json?: boolean },
): Promise<number> {
  const size = await stat(file).then(
    (s) => s.size,
    (error: unknown) => {
      throw new UsageError(`cannot read ${file}: ${coerceError(error).message}`);
    },
  );
  const header = await readCsvHeader(file);
  const app = await openFromCli(options);
  try {
    const entry = cliPipeline(app, pipeline, options.config);
    const p = entry.pipeline;
    checkHeader(file, header, p, await importableColumns(app.database.db, p));
    const total = size > 0 ? await countCsvLines(file) : 0;
    const progress = createProgressReporter(process.stderr);
    const label = `import ${pipeline}`;
    let sent = 0;
    const started = Date.now();
    const client = await app.database.pool.connect();
    let rows: number;
    try {
      rows = await copyRowsIn(
        client,
        p,
        header,
        csvChunks(file, (lines) => {
          sent += lines;
          progress.update([
            {
              pipeline: label,
              total,
              settled: Math.min(total, Math.max(0, sent - 1)),
            },
          ]);
        }),
      );
    } catch (error) {
      throw describeCopyError(file, p, error);
    } finally {
      client.release();
      progress.done();
    }
    const seconds = (Date.now() - started) / 1000;
    const table = `${p.table.schema}.${p.table.name}`;
    if (options.json)
      console.log(
        JSON.stringify({
          pipeline,
          table,
          file,
          rows,
          seconds,
          rows_per_second: Math.round(rows / Math.max(seconds, 0.001)),
        }),
      );
    else console.log(`imported ${rows} rows into ${table} (pipeline ${pipeline}): pending now`);
    return 0;
  } finally {
    await app.close();
  }
}

/** Checks the header against the table before anything is sent: each error names the column. */
function checkHeader(
  file: string,
  header: readonly string[],
  p: InstalledPipeline,
  columns: readonly ImportableColumn[],
): void {
  const table = `${p.table.schema}.${p.table.name}`;
  const known = new Map(columns.map((c) => [c.name, c]));
  const state = new Set(Object.values(p.columns));
  const seen = new Set<string>();
  header.forEach((name, i) => {
    const at = `${file} line 1, column ${i + 1} (${JSON.stringify(name)})`;
    if (seen.has(name)) throw new Error(`${at}: the column is named twice`);
    seen.add(name);
    if (state.has(name))
      throw new Error(
        `${at}: is Gleaner's state column; leave it out (new rows start pending from its default)`,
      );
    if (!known.has(name))
      throw new Error(
        `${at}: not a column of ${table} (columns: ${columns.map((c) => c.name).join(", ")})`,
      );
  });
  const key = known.get(p.key);
  if (!seen.has(p.key) && key && !key.defaulted)
    throw new Error(
      `${file} line 1: no column ${p.key}, the key of pipeline ${p.name}, and ${table} gives it no default; add the column`,
    );
}

/** A refused COPY as the operator fixes it: the file, the line, the column, what was wrong. */
function describeCopyError(file: string, p: InstalledPipeline, error: unknown): Error {
  const cause = coerceError(error);
  const place = copyErrorPlace(error);
  const empty = nullColumnOf(error);
  const column = place.column ?? empty;
  const where = [
    file,
    place.line === undefined ? undefined : `line ${place.line}`,
    column === undefined ? undefined : `column ${column}`,
  ]
    .filter(Boolean)
    .join(place.line === undefined ? " " : ", ")
    .replace(`${file}, `, `${file} `);
  const message =
    empty === p.key
      ? `the key ${p.key} is empty`
      : empty !== undefined
        ? `${empty} is empty, and the table requires a value (NOT NULL)`
        : cause.message;
  return new Error(`${where}: ${message}; nothing was imported`, { cause });
}
