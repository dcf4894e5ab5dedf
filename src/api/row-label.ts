/**
 * How an error names a submitted row, or one of its fields: `rows[3]` / `rows[3].domain` for
 * JSON, `CSV line 5` / `CSV line 5, column domain` for CSV, so the caller finds it in what they
 * sent.
 */
export type RowLabel = (index: number, key?: string) => string;

export const jsonRowLabel: RowLabel = (index, key) =>
  key === undefined ? `rows[${index}]` : `rows[${index}].${key}`;

/** `lines[i]` is the CSV line row i ended on (the header is line 1). */
export function csvRowLabel(lines: readonly number[]): RowLabel {
  return (index, key) =>
    `CSV line ${lines[index] ?? index + 2}${key === undefined ? "" : `, column ${key}`}`;
}
