// Loads a folder into <schema>.search_documents for the `local` provider. Idempotent: rows are
// upserted by URL and rewritten only when their content changed, so re-running it at every start
// costs a read of the folder and no table churn.
import { sql } from "kysely";
import type { Db } from "../db/connect-database.ts";
import { readCorpusFolder, type CorpusDocument } from "./read-corpus-folder.ts";
import { coerceError } from "../core/coerce-error.ts";

export interface IndexCorpusReport {
  corpus: string;
  files: number;
  inserted: number;
  updated: number;
  unchanged: number;
  /** Documents under baseUrl whose files are gone. */
  removed: number;
  /** Files whose text was cut to MAX_BODY_CHARS. */
  truncated: string[];
}

// Keeps each statement's parameters (and the server's memory for them) bounded on big folders.
const BATCH = 200;

export async function indexCorpusFolder(
  db: Db,
  schema: string,
  corpus: string,
  dir: string,
  baseUrl: string,
): Promise<IndexCorpusReport> {
  let documents: CorpusDocument[];
  try {
    documents = await readCorpusFolder(dir);
  } catch (error) {
    throw new Error(`cannot read corpus folder ${dir}: ${coerceError(error).message}`, {
      cause: error,
    });
  }
  const base = baseUrl.endsWith("/") ? baseUrl : `${baseUrl}/`;
  const urls = documents.map((d) => documentUrl(base, d.relativePath));
  const table = sql.table(`${schema}.search_documents`);
  const report: IndexCorpusReport = {
    corpus,
    files: documents.length,
    inserted: 0,
    updated: 0,
    unchanged: 0,
    removed: 0,
    truncated: documents.filter((d) => d.truncated).map((d) => d.relativePath),
  };
  await db.transaction().execute(async (trx) => {
    for (let start = 0; start < documents.length; start += BATCH) {
      const batch = documents.slice(start, start + BATCH);
      // `xmax = 0` tells a fresh insert from an update; unchanged rows are filtered by the WHERE
      // and not returned, so what is missing from the answer was already up to date.
      const { rows } = await sql<{ inserted: boolean }>`
        insert into ${table} (corpus, url, title, body)
        select ${corpus}, d.url, d.title, d.body
        from unnest(${urls.slice(start, start + BATCH)}::text[], ${batch.map((d) => d.title)}::text[],
                    ${batch.map((d) => d.body)}::text[]) as d(url, title, body)
        on conflict (url) do update
          set corpus = excluded.corpus, title = excluded.title, body = excluded.body
          where (search_documents.corpus, search_documents.title, search_documents.body)
            is distinct from (excluded.corpus, excluded.title, excluded.body)
        returning (xmax = 0) as inserted
      `.execute(trx);
      const inserted = rows.filter((r) => r.inserted).length;
      report.inserted += inserted;
      report.updated += rows.length - inserted;
      report.unchanged += batch.length - rows.length;
    }
    // Only this folder's URLs are pruned: a corpus may be loaded from several folders.
    const removed = await sql`
      delete from ${table}
      where corpus = ${corpus} and starts_with(url, ${base}) and url <> all(${urls}::text[])
    `.execute(trx);
    report.removed = Number(removed.numAffectedRows ?? 0);
  });
  return report;
}

/** baseUrl + the relative path, each segment percent-encoded (spaces, `#` and `?` in names). */
export function documentUrl(baseUrl: string, relativePath: string): string {
  const base = baseUrl.endsWith("/") ? baseUrl : `${baseUrl}/`;
  return base + relativePath.split("/").map(encodeURIComponent).join("/");
}
