import { createReadStream } from "node:fs";
import { open } from "node:fs/promises";
import { parse } from "csv-parse/sync";

const BOM = Buffer.from([0xef, 0xbb, 0xbf]);
/** A header line longer than this is not a CSV header. */
const HEADER_MAX_BYTES = 1 << 20;

/** The column names of a CSV file's first line (a byte-order mark skipped). */
export async function readCsvHeader(file: string): Promise<string[]> {
  const handle = await open(file, "r");
  try {
    const buffer = Buffer.alloc(HEADER_MAX_BYTES);
    const { bytesRead } = await handle.read(buffer, 0, HEADER_MAX_BYTES, 0);
    const head = buffer.subarray(0, bytesRead);
    if (bytesRead === 0) throw new Error(`${file} is empty: its first line must name the columns`);
    const records: string[][] = parse(head, { bom: true, to_line: 1, relax_column_count: true });
    const header = records[0] ?? [];
    if (header.length === 0 || header.every((h) => h === ""))
      throw new Error(`${file} line 1: the header names no column`);
    return header;
  } finally {
    await handle.close();
  }
}

/** Lines after the header (what a progress bar counts): newlines, plus an unterminated last line. */
export async function countCsvLines(file: string): Promise<number> {
  let lines = 0;
  let last = 0x0a;
  for await (const chunk of createReadStream(file, {
    highWaterMark: 1 << 20,
  }) as AsyncIterable<Buffer>) {
    let i = -1;
    while ((i = chunk.indexOf(0x0a, i + 1)) !== -1) lines++;
    if (chunk.length > 0) last = chunk[chunk.length - 1] as number;
  }
  return Math.max(0, lines + (last === 0x0a ? 0 : 1) - 1);
}

/**
 * The file's bytes, a byte-order mark dropped, `onLines` told how many lines each chunk ends
 * (for the progress bar), in chunks of 256 KiB: read as fast as they are sent, never all at once.
 */
export async function* csvChunks(
  file: string,
  onLines: (lines: number) => void,
): AsyncGenerator<Buffer> {
  let first = true;
  for await (const read of createReadStream(file, {
    highWaterMark: 256 * 1024,
  }) as AsyncIterable<Buffer>) {
    let chunk = read;
    if (first && chunk.subarray(0, 3).equals(BOM)) chunk = chunk.subarray(3);
    first = false;
    let lines = 0;
    let i = -1;
    while ((i = chunk.indexOf(0x0a, i + 1)) !== -1) lines++;
    onLines(lines);
    yield chunk;
  }
}
