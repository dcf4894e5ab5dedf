import { parse as parseCsv } from "csv-parse/sync";
import { coerceError } from "../core/coerce-error.ts";
import { ApiError } from "./api-error.ts";

/** The rows of a CSV body, and the line each one ended on (for error messages). */
export interface CsvRows {
  rows: Record<string, string>[];
  lines: number[];
}

/**
 * Parses CSV whose first line names the columns. Each row is an object without a prototype, so
 * a column named `__proto__`, `constructor` or `prototype` is an ordinary column (which the row
 * validation then names if it is not an input) and can change no object's prototype. A header
 * named twice, or a column without a name, is a 400 naming it: one of the two values would
 * otherwise be dropped without a word. A byte order mark is dropped when the body is decoded.
 */
export function parseCsvRows(text: string): CsvRows {
  let records: { record: string[]; info: { lines: number } }[];
  try {
    records = parseCsv(text, { info: true, skip_empty_lines: true, trim: true }) as unknown as {
      record: string[];
      info: { lines: number };
    }[];
  } catch (caught) {
    const error = coerceError(caught);
    throw new ApiError(400, `CSV does not parse: ${error.message}`, { cause: error });
  }
  const [header, ...body] = records;
  if (!header) throw new ApiError(400, "the CSV is empty: its first line names the input columns");
  const names = header.record;
  names.forEach((name, i) => {
    if (name === "") throw new ApiError(400, `CSV column ${i + 1} has no name in the header line`);
    const first = names.indexOf(name);
    if (first !== i)
      throw new ApiError(
        400,
        `CSV header "${name}" appears twice (columns ${first + 1} and ${i + 1}); name each column once`,
      );
  });
  const rows = body.map(({ record }) => {
    const row = Object.create(null) as Record<string, string>;
    names.forEach((name, i) => (row[name] = record[i] as string));
    return row;
  });
  return { rows, lines: body.map(({ info }) => info.lines) };
}
