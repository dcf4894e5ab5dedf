import type { GleanerConfig, SearchProviderSettings } from "../config/config-types.ts";

/**
 * Corpus folders of `local` providers. Gleaner serves each folder itself on its HTTP port under
 * /corpus/<provider>/, so the documents the local search finds are real pages the crawl stage
 * fetches like any other; the index stores them under that URL.
 */

export interface ServedCorpus {
  provider: string;
  corpus: string;
  folder: string;
  /** `http://127.0.0.1:9464/corpus/<provider>/` */
  baseUrl: string;
}

export function servedCorpora(config: GleanerConfig): ServedCorpus[] {
  return config.search.providers
    .filter(
      (p): p is SearchProviderSettings & { folder: string; corpus: string } =>
        p.provider === "local" && p.folder !== undefined && p.corpus !== undefined,
    )
    .map((p) => ({
      provider: p.name,
      corpus: p.corpus,
      folder: p.folder,
      baseUrl: p.baseUrl ?? `${ownOrigin(config)}/corpus/${encodeURIComponent(p.name)}/`,
    }));
}

/** The origin the crawler uses to reach this process's HTTP port. */
export function ownOrigin(config: GleanerConfig): string {
  const host = config.http.host;
  const loopback = host === "0.0.0.0" || host === "::" || host === "" || host === "localhost";
  const name = loopback ? "127.0.0.1" : host.includes(":") ? `[${host}]` : host;
  return `http://${name}:${config.http.port}`;
}

/**
 * The URL prefixes of the corpora Gleaner serves itself, `<own origin>/corpus/<provider>/`: the
 * SSRF guard lets exactly these through. Never the whole origin: the same port answers the API,
 * /metrics and /openapi.json, which a crawled page must not reach.
 */
export function ownCorpusPrefixes(config: GleanerConfig): string[] {
  const own = ownOrigin(config);
  return servedCorpora(config)
    .filter((c) => c.baseUrl === `${own}/corpus/${encodeURIComponent(c.provider)}/`)
    .map((c) => c.baseUrl);
}
