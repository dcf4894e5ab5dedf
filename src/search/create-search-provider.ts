// Builds the provider a `search` stage names, from its config block. Checks here are the ones
// that would otherwise surface as a failed call on the first row (no key, a malformed URL).
import { ConfigError } from "../config/config-error.ts";
import type { Db } from "../db/connect-database.ts";
import { BRAVE_DEFAULT_BASE_URL, createBraveProvider } from "./brave-provider.ts";
import { createLocalSearchProvider } from "./local-search-provider.ts";
import type { HostedProviderOptions } from "./search-http.ts";
import type { SearchProvider } from "./search-provider.ts";
import { createSearxngProvider } from "./searxng-provider.ts";
import { SERPER_DEFAULT_BASE_URL, createSerperProvider } from "./serper-provider.ts";
import { TAVILY_DEFAULT_BASE_URL, createTavilyProvider } from "./tavily-provider.ts";

export type SearchProviderKind = "serper" | "brave" | "tavily" | "searxng" | "local";

export interface SearchProviderConfig {
  provider: SearchProviderKind;
  /** Defaults to the public API for serper, brave and tavily; required for searxng. */
  base_url?: string | undefined;
  /** Required for serper, brave and tavily; optional for searxng (a bearer for a proxy). */
  api_key?: string | undefined;
  /** The corpus a `local` provider searches. */
  corpus?: string | undefined;
  timeout_ms: number;
  /** The most results asked of the provider per query: some providers bill by it. */
  limit: number;
}

export interface SearchProviderDeps {
  /** Required for `local`. */
  db?: Db | undefined;
  /** Gleaner's schema, required for `local`. */
  schema?: string | undefined;
  /** Where this block sits in the config file, for error messages (`pipelines.x.stages[1]`). */
  configPath?: string | undefined;
}

const DEFAULT_BASE_URLS: Partial<Record<SearchProviderKind, string>> = {
  serper: SERPER_DEFAULT_BASE_URL,
  brave: BRAVE_DEFAULT_BASE_URL,
  tavily: TAVILY_DEFAULT_BASE_URL,
};

const NEEDS_KEY: ReadonlySet<SearchProviderKind> = new Set(["serper", "brave", "tavily"]);

export function createSearchProvider(
  config: SearchProviderConfig,
  deps: SearchProviderDeps = {},
): SearchProvider {
  const at = (key: string) => (deps.configPath ? `${deps.configPath}.${key}` : key);
  if (!Number.isInteger(config.timeout_ms) || config.timeout_ms <= 0) {
    throw new ConfigError(at("timeout_ms"), `must be a positive integer, got ${config.timeout_ms}`);
  }
  if (!Number.isInteger(config.limit) || config.limit < 1 || config.limit > 100) {
    throw new ConfigError(at("limit"), `must be an integer from 1 to 100, got ${config.limit}`);
  }

  if (config.provider === "local") {
    if (!config.corpus)
      throw new ConfigError(at("corpus"), "the local provider needs a corpus name");
    if (!deps.db || !deps.schema) {
      throw new Error("createSearchProvider: the local provider needs the database and schema");
    }
    return createLocalSearchProvider({
      db: deps.db,
      schema: deps.schema,
      corpus: config.corpus,
      timeoutMs: config.timeout_ms,
      maxResults: config.limit,
    });
  }

  const baseUrl = config.base_url ?? DEFAULT_BASE_URLS[config.provider];
  if (!baseUrl) {
    throw new ConfigError(at("base_url"), `${config.provider} is self-hosted: set its base_url`);
  }
  checkBaseUrl(baseUrl, at("base_url"));
  if (NEEDS_KEY.has(config.provider) && !config.api_key) {
    throw new ConfigError(at("api_key"), `${config.provider} needs an API key`);
  }
  const options: HostedProviderOptions = {
    baseUrl,
    apiKey: config.api_key,
    timeoutMs: config.timeout_ms,
    maxResults: config.limit,
  };
  switch (config.provider) {
    case "serper":
      return createSerperProvider(options);
    case "brave":
      return createBraveProvider(options);
    case "tavily":
      return createTavilyProvider(options);
    case "searxng":
      return createSearxngProvider(options);
    default: {
      const unknown: never = config.provider;
      throw new ConfigError(at("provider"), `unknown search provider ${String(unknown)}`);
    }
  }
}

function checkBaseUrl(value: string, path: string): void {
  let url: URL;
  try {
    url = new URL(value);
  } catch (error) {
    throw new ConfigError(path, `not a URL: ${value}`, { cause: error });
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new ConfigError(path, `must be an http(s) URL, got ${url.protocol}`);
  }
  // Credentials belong in api_key, which is kept out of messages and logs; a URL is not.
  if (url.username || url.password) {
    throw new ConfigError(path, "must not contain credentials: use api_key");
  }
}
