import { stringify } from "csv-stringify/sync";
import { neutraliseFormula } from "../api/csv-cells.ts";
import type { InstalledPipeline } from "../pipeline/installed-pipeline.ts";
import type { ExportedRow } from "../sql/read-rows-for-export.ts";

export type ExportFormat = "csv" | "jsonl";

/**
 * The CSV columns of an export: the key under its own name (so inputs can be imported again),
 * status, the row's confidence, the inputs, the outputs, then each output's confidence and
 * sources (`<output>.confidence`, `<output>.sources`: URLs separated by spaces).
 */
export function exportColumns(p: InstalledPipeline): string[] {
  const outputs = p.outputs.map((o) => o.name);
  const head = p.inputs.includes(p.key) ? [] : [p.key];
  return [
    ...head,
    "status",
    "confidence",
    ...p.inputs,
    ...outputs,
    ...outputs.flatMap((o) => [`${o}.confidence`, `${o}.sources`]),
  ];
}

function flat(p: InstalledPipeline, row: ExportedRow): Record<string, unknown> {
  const cells: Record<string, unknown> = {
    [p.key]: row.key,
    status: row.status,
    confidence: row.confidence,
    ...row.inputs,
    ...row.values,
  };
  for (const o of p.outputs) {
    const column = row.columns?.[o.name];
    cells[`${o.name}.confidence`] = column?.confidence ?? null;
    cells[`${o.name}.sources`] = (column?.sources ?? []).join(" ");
  }
  return cells;
}

/** A cell's text: objects (json outputs) as JSON, booleans as true/false, NULL empty. */
function cell(value: unknown): unknown {
  if (value === null || value === undefined) return "";
  if (typeof value === "object") return JSON.stringify(value);
  if (typeof value === "boolean") return String(value);
  // Values come from the web: no cell may run as a spreadsheet formula (src/api/csv-cells.ts).
  return neutraliseFormula(value);
}

/** A batch of rows as export text; `first` adds the CSV header. */
export function exportLines(
  p: InstalledPipeline,
  format: ExportFormat,
  rows: readonly ExportedRow[],
  first: boolean,
): string {
  if (format === "jsonl")
    return rows
      .map((row) => {
        const sources: Record<string, string[]> = {};
        const confidences: Record<string, number | null> = {};
        for (const o of p.outputs) {
          sources[o.name] = row.columns?.[o.name]?.sources ?? [];
          confidences[o.name] = row.columns?.[o.name]?.confidence ?? null;
        }
        return `${JSON.stringify({
          key: row.key,
          status: row.status,
          confidence: row.confidence,
          ...row.inputs,
          ...row.values,
          confidences,
          sources,
        })}\n`;
      })
      .join("");
  const columns = exportColumns(p);
  return stringify(
    rows.map((row) => {
      const cells = flat(p, row);
      return columns.map((c) => cell(cells[c]));
    }),
    first ? { header: true, columns } : {},
  );
}
