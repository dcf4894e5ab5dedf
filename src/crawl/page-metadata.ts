import { absoluteHttpUrl, collapseWhitespace, type DomDocument } from "./extract-dom.ts";
import type { JsonLdObject, StructuredData } from "./extract-structured-data.ts";

/**
 * What a page says about itself, beside its text: title, description, site name, author,
 * dates, language and canonical URL. Read from the head (Open Graph, `<meta>`, `<link
 * rel=canonical>`, `<html lang>`) and JSON-LD, before Readability rewrites the DOM; Readability's
 * own findings (byline, site name, published time) are preferred when it found an article.
 * A fact such as "founded in" or "updated on" often lives only here, not in the body text.
 */

export interface PageMetadata {
  title: string;
  description?: string;
  siteName?: string;
  byline?: string;
  /** As the page writes it (ISO 8601 in most pages). */
  publishedTime?: string;
  modifiedTime?: string;
  /** `<html lang>`, else `og:locale`/`content-language`. */
  language?: string;
  canonicalUrl?: string;
}

/** Readability's article metadata, when it found an article. */
export interface ArticleMetadata {
  title?: string | null | undefined;
  byline?: string | null | undefined;
  siteName?: string | null | undefined;
  publishedTime?: string | null | undefined;
  excerpt?: string | null | undefined;
  lang?: string | null | undefined;
}

export function readPageMetadata(
  document: DomDocument,
  structured: StructuredData,
  baseUrl: string,
): PageMetadata {
  const og = structured.openGraph;
  const meta = structured.meta;
  const ld = articleLikeJsonLd(structured.jsonLd);
  const metadata: PageMetadata = {
    title:
      first(og["og:title"], meta["twitter:title"], document.title, textOf(ld?.headline)) ??
      collapseWhitespace(document.querySelector("h1")?.textContent),
  };
  set(metadata, "description", og["og:description"], meta.description, textOf(ld?.description));
  set(metadata, "siteName", og["og:site_name"], meta["application-name"], publisherName(ld));
  set(metadata, "byline", authorName(ld?.author), meta.author, meta["article:author"]);
  set(
    metadata,
    "publishedTime",
    og["article:published_time"],
    meta["article:published_time"],
    textOf(ld?.datePublished),
    meta.date,
    meta["dc.date"],
  );
  set(
    metadata,
    "modifiedTime",
    og["article:modified_time"],
    meta["article:modified_time"],
    og["og:updated_time"],
    textOf(ld?.dateModified),
  );
  set(
    metadata,
    "language",
    document.documentElement?.getAttribute("lang"),
    og["og:locale"],
    meta["content-language"],
  );
  const canonical = absoluteHttpUrl(
    document.querySelector('link[rel~="canonical"][href]')?.getAttribute("href") ?? og["og:url"],
    baseUrl,
  );
  if (canonical) metadata.canonicalUrl = canonical;
  return metadata;
}

/** The head's metadata with Readability's findings put first. */
export function withArticleMetadata(page: PageMetadata, article: ArticleMetadata): PageMetadata {
  const merged: PageMetadata = { ...page };
  const title = first(article.title);
  if (title) merged.title = title;
  set(merged, "byline", article.byline, page.byline);
  set(merged, "siteName", article.siteName, page.siteName);
  set(merged, "publishedTime", article.publishedTime, page.publishedTime);
  set(merged, "description", page.description, article.excerpt);
  set(merged, "language", page.language, article.lang);
  return merged;
}

type OptionalKey = Exclude<keyof PageMetadata, "title">;

function set(target: PageMetadata, key: OptionalKey, ...candidates: unknown[]): void {
  const value = first(...candidates);
  if (value) target[key] = value;
  else Reflect.deleteProperty(target, key);
}

function first(...candidates: unknown[]): string | undefined {
  for (const candidate of candidates) {
    const text = textOf(candidate);
    if (text) return text;
  }
  return undefined;
}

function textOf(value: unknown): string | undefined {
  if (typeof value === "string") return collapseWhitespace(value) || undefined;
  if (Array.isArray(value)) return textOf(value[0]);
  return undefined;
}

const ARTICLE_TYPES = /Article|Posting|Report|WebPage|BlogPosting|NewsArticle/;

function articleLikeJsonLd(objects: JsonLdObject[]): JsonLdObject | undefined {
  return objects.find((o) => {
    const type = o["@type"];
    const types = Array.isArray(type) ? type : [type];
    return types.some((t) => typeof t === "string" && ARTICLE_TYPES.test(t));
  });
}

function nameOf(value: unknown): string | undefined {
  if (typeof value === "string") return textOf(value);
  if (Array.isArray(value)) {
    const names = value.map(nameOf).filter((n): n is string => n !== undefined);
    return names.length > 0 ? names.join(", ") : undefined;
  }
  if (value !== null && typeof value === "object") return textOf((value as JsonLdObject).name);
  return undefined;
}

function authorName(author: unknown): string | undefined {
  return nameOf(author);
}

function publisherName(ld: JsonLdObject | undefined): string | undefined {
  return ld ? nameOf(ld.publisher) : undefined;
}
