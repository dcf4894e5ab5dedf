// Shared by the provider files: each one picks its own fields, then this turns them into
// SearchResults the same way (ranks, limits, plain-text snippets, unusable items dropped).
import { decodeHTML } from "entities";
import { SearchError, type SearchResult } from "./search-provider.ts";

export interface RawItem {
  title: unknown;
  url: unknown;
  snippet: unknown;
}

export function asRecord(value: unknown): Record<string, unknown> | undefined {
  return typeof value === "object" && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}

/**
 * The array at `body[key]`. A missing key is an empty answer where the provider omits it when
 * nothing matched (`optional`); a body of the wrong shape is an invalid response.
 */
export function arrayField(
  provider: string,
  query: string,
  body: unknown,
  path: readonly string[],
  optional: boolean,
): unknown[] {
  let current: unknown = body;
  for (const [i, key] of path.entries()) {
    const record = asRecord(current);
    if (!record) {
      throw invalid(
        provider,
        query,
        `${["(body)", ...path.slice(0, i)].join(".")} is not an object`,
      );
    }
    current = record[key];
    if (current === undefined && optional) return [];
  }
  if (!Array.isArray(current)) throw invalid(provider, query, `${path.join(".")} is not an array`);
  return current;
}

function invalid(provider: string, query: string, detail: string): SearchError {
  return new SearchError(`${provider} search returned an unexpected body: ${detail}`, {
    provider,
    errorClass: "invalid_response",
    query,
  });
}

/** Items without an http(s) URL cannot be crawled or cited, so they are dropped, not errors. */
export function toSearchResults(
  provider: string,
  items: readonly RawItem[],
  limit: number,
): SearchResult[] {
  const results: SearchResult[] = [];
  for (const item of items) {
    if (results.length >= limit) break;
    if (typeof item.url !== "string" || !/^https?:\/\//i.test(item.url)) continue;
    const title = typeof item.title === "string" ? plainText(item.title) : "";
    results.push({
      title: title || item.url,
      url: item.url,
      snippet: typeof item.snippet === "string" ? plainText(item.snippet) : "",
      rank: results.length + 1,
      provider,
    });
  }
  return results;
}

/** Brave and SearXNG mark matches with <strong>/<b> and entities; prompts want plain text. */
export function plainText(html: string): string {
  return decodeHTML(html.replace(/<[^>]*>/g, ""))
    .replace(/\s+/g, " ")
    .trim();
}

/** The number of results to ask for: the caller's limit within the config's and the API's caps. */
export function effectiveLimit(
  provider: string,
  query: string,
  limit: number,
  maxResults: number | undefined,
  apiMax: number,
): number {
  if (!Number.isInteger(limit) || limit < 1) {
    throw new SearchError(`${provider} search: limit must be a positive integer, got ${limit}`, {
      provider,
      errorClass: "bad_request",
      query,
    });
  }
  return Math.min(limit, maxResults ?? apiMax, apiMax);
}

/** Providers reject an empty query with a 400 that costs a request; refuse it here instead. */
export function checkQuery(provider: string, query: string): void {
  if (query.trim() === "") {
    throw new SearchError(`${provider} search: the query is empty`, {
      provider,
      errorClass: "bad_request",
      query,
    });
  }
}
