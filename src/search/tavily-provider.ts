// Tavily: POST {base}/search, key as `Authorization: Bearer`, body {query, max_results};
// the answer lists results in `results[]` as {title, url, content, score}.
import { fetchSearchJson, joinBaseUrl, type HostedProviderOptions } from "./search-http.ts";
import type { SearchProvider } from "./search-provider.ts";
import {
  arrayField,
  asRecord,
  checkQuery,
  effectiveLimit,
  toSearchResults,
} from "./search-result-items.ts";

export const TAVILY_DEFAULT_BASE_URL = "https://api.tavily.com";
// Tavily accepts max_results from 0 to 20.
const TAVILY_MAX_RESULTS = 20;

export function createTavilyProvider(options: HostedProviderOptions): SearchProvider {
  const name = options.name ?? "tavily";
  const apiKey = options.apiKey ?? "";
  return {
    name,
    async search(query, { limit, signal }) {
      checkQuery(name, query);
      const maxResults = effectiveLimit(name, query, limit, options.maxResults, TAVILY_MAX_RESULTS);
      const body = await fetchSearchJson({
        provider: name,
        query,
        url: joinBaseUrl(options.baseUrl, "search"),
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${apiKey}` },
        body: { query, max_results: maxResults },
        timeoutMs: options.timeoutMs,
        signal,
        secrets: [apiKey],
      });
      // Tavily always sends `results` (empty when nothing matched): missing means a wrong body.
      const results = arrayField(name, query, body, ["results"], false);
      const items = results.map((raw) => {
        const item = asRecord(raw) ?? {};
        return { title: item.title, url: item.url, snippet: item.content };
      });
      return toSearchResults(name, items, maxResults);
    },
  };
}
