// SearXNG (self-hosted metasearch): GET {base}/search?q=&format=json — the instance must list
// `json` in search.formats, else it answers 403. Results are in `results[]` as {title, url, content}.
import { fetchSearchJson, joinBaseUrl, type HostedProviderOptions } from "./search-http.ts";
import type { SearchProvider } from "./search-provider.ts";
import {
  arrayField,
  asRecord,
  checkQuery,
  effectiveLimit,
  toSearchResults,
} from "./search-result-items.ts";

// SearXNG has no page-size parameter: one page holds what its engines returned, often 10-30.
const SEARXNG_MAX_RESULTS = 100;

export function createSearxngProvider(options: HostedProviderOptions): SearchProvider {
  const name = options.name ?? "searxng";
  const apiKey = options.apiKey;
  return {
    name,
    async search(query, { limit, signal }) {
      checkQuery(name, query);
      const wanted = effectiveLimit(name, query, limit, options.maxResults, SEARXNG_MAX_RESULTS);
      const url = joinBaseUrl(options.baseUrl, "search");
      url.searchParams.set("q", query);
      url.searchParams.set("format", "json");
      const body = await fetchSearchJson({
        provider: name,
        query,
        url,
        method: "GET",
        // SearXNG itself has no keys; an instance behind an authenticating proxy takes a bearer.
        headers: apiKey ? { authorization: `Bearer ${apiKey}` } : {},
        timeoutMs: options.timeoutMs,
        signal,
        secrets: apiKey ? [apiKey] : [],
      });
      const results = arrayField(name, query, body, ["results"], false);
      const items = results.map((raw) => {
        const item = asRecord(raw) ?? {};
        return { title: item.title, url: item.url, snippet: item.content };
      });
      return toSearchResults(name, items, wanted);
    },
  };
}
