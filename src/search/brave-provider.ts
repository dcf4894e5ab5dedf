// Brave Search web API: GET {base}/res/v1/web/search?q=&count=, key in X-Subscription-Token;
// the answer lists results in `web.results[]` as {title, url, description} (with <strong> marks).
import { fetchSearchJson, joinBaseUrl, type HostedProviderOptions } from "./search-http.ts";
import type { SearchProvider } from "./search-provider.ts";
import {
  arrayField,
  asRecord,
  checkQuery,
  effectiveLimit,
  toSearchResults,
} from "./search-result-items.ts";

export const BRAVE_DEFAULT_BASE_URL = "https://api.search.brave.com";
// Brave documents count as at most 20.
const BRAVE_MAX_COUNT = 20;

export function createBraveProvider(options: HostedProviderOptions): SearchProvider {
  const name = options.name ?? "brave";
  const apiKey = options.apiKey ?? "";
  return {
    name,
    async search(query, { limit, signal }) {
      checkQuery(name, query);
      const count = effectiveLimit(name, query, limit, options.maxResults, BRAVE_MAX_COUNT);
      const url = joinBaseUrl(options.baseUrl, "res/v1/web/search");
      url.searchParams.set("q", query);
      url.searchParams.set("count", String(count));
      const body = await fetchSearchJson({
        provider: name,
        query,
        url,
        method: "GET",
        headers: { "x-subscription-token": apiKey },
        timeoutMs: options.timeoutMs,
        signal,
        secrets: [apiKey],
      });
      // Brave leaves `web` out of the answer when nothing matched.
      const results = arrayField(name, query, body, ["web", "results"], true);
      const items = results.map((raw) => {
        const item = asRecord(raw) ?? {};
        return { title: item.title, url: item.url, snippet: item.description };
      });
      return toSearchResults(name, items, count);
    },
  };
}
