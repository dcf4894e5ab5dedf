import { createWriteStream, openSync } from "node:fs";
import { once } from "node:events";
import { readRowsForExport } from "../../sql/read-rows-for-export.ts";
import { cliPipeline, openFromCli } from "../cli-context.ts";
import { UsageError } from "../exit-codes.ts";
import { exportLines, type ExportFormat } from "../export-lines.ts";

const FORMATS: readonly ExportFormat[] = ["csv", "jsonl"];

/**
 * `gleaner export PIPELINE [--format csv|jsonl] [--where SQL] [--out FILE]`: every row (or those
 * matching --where) with its values, confidence and sources, streamed from a cursor a batch at a
 * time and written with backpressure, so memory stays the same for a thousand rows or millions.
 * The rows go to stdout (the command's result) or to --out; the count goes to stderr.
 */
export async function exportCommand(
  pipeline: string,
  options: { config: string; format?: string; where?: string; out?: string },
): Promise<number> {
  const format = (options.format ?? "csv") as ExportFormat;
  if (!FORMATS.includes(format))
    throw new UsageError(`--format must be one of ${FORMATS.join(", ")}, not "${options.format}"`);
  const app = await openFromCli(options);
  try {
    const entry = cliPipeline(app, pipeline, options.config);
    const p = entry.pipeline;
    // Opened here, so a path that cannot be written fails now, with its reason, before any row.
    const out = options.out
      ? createWriteStream("", { fd: openSync(options.out, "w") })
      : process.stdout;
    const client = await app.database.pool.connect();
    let rows = 0;
    try {
      const write = async (text: string) => {
        if (!out.write(text)) await once(out, "drain");
      };
      let first = true;
      for await (const batch of readRowsForExport(app.database.db, client, p, {
        ...(options.where ? { where: options.where } : {}),
      })) {
        await write(exportLines(p, format, batch, first));
        first = false;
        rows += batch.length;
      }
      if (first && format === "csv") await write(exportLines(p, format, [], true));
    } finally {
      client.release();
      if (out !== process.stdout) {
        out.end();
        await once(out, "finish");
      }
    }
    process.stderr.write(
      `gleaner: exported ${rows} rows of ${pipeline}${options.out ? ` to ${options.out}` : ""}\n`,
    );
    return 0;
  } finally {
    await app.close();
  }
}
