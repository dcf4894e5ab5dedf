import type { Db } from "../db/connect-database.ts";

/**
 * The shared page cache: one row per requested URL. A fresh row is served without touching the
 * network; a stale one is revalidated with its validators, and a 304 only moves `fetched_at`.
 */

export interface CachedPage {
  url: string;
  finalUrl: string;
  status: number;
  contentType: string;
  charset: string;
  body: string;
  structured: unknown;
  etag: string | null;
  lastModified: string | null;
  fetchedAt: Date;
  bytes: number;
  /** What the crawl stage extracted, when it has (see page-content-store.ts). */
  content?: StoredContent | undefined;
}

export interface StoredContent {
  title: string;
  markdown: string;
  links: Array<{ url: string; text: string }>;
  rendered: boolean;
}

export interface CacheLookup {
  page: CachedPage;
  /** Younger than maxAgeMs: usable as is. Otherwise revalidate with etag / lastModified. */
  fresh: boolean;
}

export async function getCachedPage(
  db: Db,
  schema: string,
  url: string,
  maxAgeMs: number,
  now: number = Date.now(),
): Promise<CacheLookup | undefined> {
  const row = await db
    .withSchema(schema)
    .selectFrom("page_cache")
    .selectAll()
    .where("url", "=", url)
    .executeTakeFirst();
  if (!row) return undefined;
  const page: CachedPage = {
    url: row.url,
    finalUrl: row.final_url,
    status: row.status,
    contentType: row.content_type,
    charset: row.charset,
    body: row.body,
    structured: row.structured,
    etag: row.etag,
    lastModified: row.last_modified,
    fetchedAt: row.fetched_at,
    bytes: row.bytes,
    content:
      row.markdown === null
        ? undefined
        : {
            title: row.title ?? "",
            markdown: row.markdown,
            links: (row.links ?? []) as StoredContent["links"],
            rendered: row.rendered,
          },
  };
  return { page, fresh: now - row.fetched_at.getTime() < maxAgeMs };
}

export async function putCachedPage(db: Db, schema: string, page: CachedPage): Promise<void> {
  const values = {
    url: page.url,
    final_url: page.finalUrl,
    status: page.status,
    content_type: page.contentType,
    charset: page.charset,
    // PostgreSQL text cannot hold NUL; a page containing one would fail the whole upsert.
    body: page.body.replaceAll("\u0000", ""),
    structured: page.structured == null ? null : JSON.stringify(page.structured),
    etag: page.etag,
    last_modified: page.lastModified,
    fetched_at: page.fetchedAt,
    bytes: page.bytes,
    // A new fetch makes any content extracted from the old body stale.
    title: page.content?.title ?? null,
    markdown: page.content ? page.content.markdown.replaceAll("\u0000", "") : null,
    links: page.content ? JSON.stringify(page.content.links) : null,
    rendered: page.content?.rendered ?? false,
  };
  const { url: _url, ...update } = values;
  await db
    .withSchema(schema)
    .insertInto("page_cache")
    .values(values)
    .onConflict((oc) => oc.column("url").doUpdateSet(update))
    .execute();
}

/** A 304: the copy is still right; it becomes fresh again, with any new validators. */
export async function touchCachedPage(
  db: Db,
  schema: string,
  url: string,
  fetchedAt: Date,
  validators: { etag: string | null; lastModified: string | null },
): Promise<void> {
  await db
    .withSchema(schema)
    .updateTable("page_cache")
    .set((eb) => ({
      fetched_at: fetchedAt,
      etag: validators.etag ?? eb.ref("etag"),
      last_modified: validators.lastModified ?? eb.ref("last_modified"),
    }))
    .where("url", "=", url)
    .execute();
}

export interface PageForExtraction {
  url: string;
  finalUrl: string;
  title: string;
  markdown: string;
  structured: unknown;
  /** When the copy read was fetched (or last revalidated). */
  fetchedAt: Date;
}

/** The extracted content of the given URLs (pages never extracted are left out). */
export async function getPageContents(
  db: Db,
  schema: string,
  urls: readonly string[],
): Promise<Map<string, PageForExtraction>> {
  const found = new Map<string, PageForExtraction>();
  if (urls.length === 0) return found;
  const rows = await db
    .withSchema(schema)
    .selectFrom("page_cache")
    .select(["url", "final_url", "title", "markdown", "structured", "fetched_at"])
    .where("url", "in", [...new Set(urls)])
    .where("markdown", "is not", null)
    .execute();
  for (const row of rows) {
    found.set(row.url, {
      url: row.url,
      finalUrl: row.final_url,
      title: row.title ?? "",
      markdown: row.markdown ?? "",
      structured: row.structured,
      fetchedAt: row.fetched_at,
    });
  }
  return found;
}
