import { ApiError } from "./api-error.ts";
import type { RowLabel } from "./row-label.ts";

const INTEGER_RANGES: Record<string, readonly [bigint, bigint]> = {
  smallint: [-32768n, 32767n],
  integer: [-2147483648n, 2147483647n],
  bigint: [-9223372036854775808n, 9223372036854775807n],
};
/** The largest finite `real` (float4). */
const REAL_MAX = 3.4028234663852886e38;
/** The spellings PostgreSQL reads as NaN or ±Infinity for numeric, real and double precision. */
const NOT_FINITE = /^[+-]?(nan|inf|infinity)$/i;
const INTEGER_TEXT = /^[+-]?\d+$/;

/**
 * Refuses numbers that PostgreSQL would store as something other than what was meant, naming
 * the row and the column: `NaN` and `Infinity` for numeric and float columns (PostgreSQL takes
 * them, but in a spreadsheet export they mean "missing"); values out of the column's range
 * (PostgreSQL would refuse them too, without saying which row); and, for a column of any type
 * but float and numeric, an integer past ±2^53 sent as a JSON number (JSON.parse has rounded
 * it already). Anything else is left to PostgreSQL's own conversion.
 *
 * `columnTypes` maps input columns to their type as format_type() writes it.
 */
export function checkNumericInputs(
  rows: readonly Record<string, unknown>[],
  columnTypes: ReadonlyMap<string, string>,
  label: RowLabel,
): void {
  rows.forEach((row, index) => {
    for (const [column, type] of columnTypes) {
      const problem = numericProblem(row[column], type);
      if (problem) throw new ApiError(400, `${label(index, column)} ${problem}`);
    }
  });
}

function numericProblem(value: unknown, type: string): string | undefined {
  const range = INTEGER_RANGES[type];
  const float = type === "real" || type === "double precision";
  const numeric = /^numeric\b/.test(type);
  // Only a float or numeric column means a JSON number as an approximate value; anywhere else
  // (an id in a text or bigint column) digits JSON.parse rounded away are a wrong value.
  if (typeof value === "number" && !float && !numeric)
    if (Number.isInteger(value) && !Number.isSafeInteger(value))
      return `is ${value} as a JSON number, past ±2^53 where JSON numbers lose digits; send it as a string ("...") to keep every digit`;
  if (!range && !float && !numeric) return undefined;
  const outOfRange = (shown: string) => `is ${shown}, out of range for ${type}`;
  if (typeof value === "number") {
    if (range && Number.isInteger(value) && (BigInt(value) < range[0] || BigInt(value) > range[1]))
      return outOfRange(String(value));
    if (type === "real" && Math.abs(value) > REAL_MAX) return outOfRange(String(value));
    return undefined;
  }
  if (typeof value !== "string") return undefined;
  const text = value.trim();
  if (NOT_FINITE.test(text))
    return `is "${value}", which is not a finite number (the column is ${type}); send a number, or null for an unknown value`;
  if (range && INTEGER_TEXT.test(text)) {
    const n = BigInt(text);
    if (n < range[0] || n > range[1]) return outOfRange(text);
  }
  if (float && text !== "") {
    const n = Number(text);
    if (Number.isNaN(n)) return undefined;
    if (!Number.isFinite(n) || (type === "real" && Math.abs(n) > REAL_MAX)) return outOfRange(text);
  }
  return undefined;
}
