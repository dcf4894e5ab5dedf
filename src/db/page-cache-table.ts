import type { ColumnType } from "kysely";

/**
 * Kysely shape of `gleaner.page_cache` (migrations/000003_page_cache.sql), part of
 * GleanerDatabase (src/db/database-types.ts).
 */
export interface PageCacheTable {
  url: string;
  final_url: string;
  status: number;
  content_type: string;
  charset: string;
  body: string;
  /** Written as JSON text: pg would turn a JS array into a PostgreSQL array, not jsonb. */
  structured: ColumnType<unknown, string | null, string | null>;
  etag: string | null;
  last_modified: string | null;
  fetched_at: ColumnType<Date, Date, Date>;
  bytes: number;
  /** Filled by the crawl stage (migrations/000007_page_content.sql); NULL until then. */
  title: ColumnType<string | null, string | null | undefined, string | null>;
  markdown: ColumnType<string | null, string | null | undefined, string | null>;
  links: ColumnType<unknown, string | null | undefined, string | null>;
  rendered: ColumnType<boolean, boolean | undefined, boolean>;
}

export interface PageCacheDatabase {
  page_cache: PageCacheTable;
}
