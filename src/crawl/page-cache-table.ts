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
}

export interface PageCacheDatabase {
  page_cache: PageCacheTable;
}
