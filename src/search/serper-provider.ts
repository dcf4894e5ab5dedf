// Serper (Google results): POST {base}/search, key in X-API-KEY, body {q, num};
// the answer lists web results in `organic[]` as {title, link, snippet, position}.
import { fetchSearchJson, joinBaseUrl, type HostedProviderOptions } from "./search-http.ts";
import type { SearchProvider } from "./search-provider.ts";
import {
  arrayField,
  asRecord,
  checkQuery,
  effectiveLimit,
  toSearchResults,
} from "./search-result-items.ts";

export const SERPER_DEFAULT_BASE_URL = "https://google.serper.dev";
// Serper accepts num up to 100 (Google's page size cap).
const SERPER_MAX_NUM = 100;

export function createSerperProvider(options: HostedProviderOptions): SearchProvider {
  const name = options.name ?? "serper";
  const apiKey = options.apiKey ?? "";
  return {
    name,
    async search(query, { limit, signal }) {
      checkQuery(name, query);
      const num = effectiveLimit(name, query, limit, options.maxResults, SERPER_MAX_NUM);
      const body = await fetchSearchJson({
        provider: name,
        query,
        url: joinBaseUrl(options.baseUrl, "search"),
        method: "POST",
        headers: { "content-type": "application/json", "x-api-key": apiKey },
        body: { q: query, num },
        timeoutMs: options.timeoutMs,
        signal,
        secrets: [apiKey],
      });
      // Serper leaves `organic` out when Google has no web results (only a knowledge graph, say).
      const organic = arrayField(name, query, body, ["organic"], true);
      const items = organic.map((raw) => {
        const item = asRecord(raw) ?? {};
        return {
          title: item.title,
          url: item.link,
          snippet: item.snippet,
          position: item.position,
        };
      });
      // Serper's `position` is Google's order; the array is already in it, but sort to be sure.
      items.sort((a, b) => positionOf(a.position) - positionOf(b.position));
      return toSearchResults(name, items, num);
    },
  };
}

function positionOf(value: unknown): number {
  return typeof value === "number" && Number.isFinite(value) ? value : Number.MAX_SAFE_INTEGER;
}
