import { resolve } from "node:path";
import { ConfigError } from "./config-error.ts";
import type { RawSearchProvider } from "./config-schema.ts";
import type { SearchProviderSettings } from "./config-types.ts";

const HOSTED_NEEDS_KEY = new Set(["serper", "brave", "tavily"]);

/** One `search.providers.<name>` entry, checked and resolved (folder against `baseDir`). */
export function resolveSearchProvider(
  name: string,
  sp: RawSearchProvider,
  baseDir: string,
): SearchProviderSettings {
  const at = `search.providers.${name}`;
  const apiKey = sp.api_key === "" ? undefined : sp.api_key;
  if (sp.provider === "local") {
    if (apiKey !== undefined)
      throw new ConfigError(
        `${at}.api_key`,
        "a local provider searches a corpus in PostgreSQL and takes no api_key: remove it",
      );
    if (sp.base_url !== undefined && sp.folder === undefined)
      throw new ConfigError(
        `${at}.base_url`,
        "a local provider's base_url is where its folder's files are published: give the folder too, or remove base_url",
      );
  } else {
    if (sp.corpus !== undefined || sp.folder !== undefined)
      throw new ConfigError(at, `corpus and folder belong to local providers, not ${sp.provider}`);
    if (sp.provider === "searxng" && sp.base_url === undefined)
      throw new ConfigError(`${at}.base_url`, "searxng is self-hosted: set its base_url");
    if (HOSTED_NEEDS_KEY.has(sp.provider) && apiKey === undefined)
      throw new ConfigError(
        `${at}.api_key`,
        `${sp.provider} needs an API key (e.g. api_key: \${${sp.provider.toUpperCase()}_API_KEY})`,
      );
  }
  if (sp.base_url !== undefined) {
    let url: URL;
    try {
      url = new URL(sp.base_url);
    } catch (error) {
      throw new ConfigError(`${at}.base_url`, "must be a URL", { cause: error });
    }
    if (url.protocol !== "http:" && url.protocol !== "https:")
      throw new ConfigError(`${at}.base_url`, `must be an http(s) URL, not ${url.protocol}`);
    if (url.username || url.password)
      throw new ConfigError(`${at}.base_url`, "must not contain credentials: use api_key");
  }
  return {
    name,
    provider: sp.provider,
    baseUrl: sp.base_url,
    apiKey,
    timeoutMs: sp.timeout,
    limit: sp.limit,
    maxConcurrency: sp.max_concurrency,
    corpus: sp.provider === "local" ? (sp.corpus ?? name.replace(/-/g, "_")) : undefined,
    folder: sp.folder === undefined ? undefined : resolve(baseDir, sp.folder),
    price: sp.price,
  };
}
