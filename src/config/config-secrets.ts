import { isCredentialName, urlCredentials } from "../core/mask-secrets.ts";
import type { RawConfig } from "./config-schema.ts";

/**
 * Every secret the config knows, for the masker (core/mask-secrets.ts): the values taken from the
 * environment, and the credential fields whether they came from the environment or were written
 * into the file: API tokens, backend and search provider keys, credential headers and query
 * parameters, and the password and credential parameters of every URL (base_url, database_url, listen_url,
 * and the DATABASE_URL variable the database falls back to).
 */
export function configSecrets(
  raw: RawConfig,
  fromEnv: readonly string[],
  env: NodeJS.ProcessEnv,
): string[] {
  const found: (string | undefined)[] = [...fromEnv, ...raw.api.tokens];
  const url = (value: string | undefined) => {
    if (value !== undefined) found.push(...urlCredentials(value));
  };
  for (const b of raw.llm.backends) {
    found.push(b.api_key);
    url(b.base_url);
    for (const [name, value] of Object.entries(b.headers ?? {}))
      if (isCredentialName(name)) found.push(value, schemeless(value));
    for (const [name, value] of Object.entries(b.query ?? {}))
      if (isCredentialName(name)) found.push(value);
  }
  for (const provider of Object.values(raw.search.providers)) {
    found.push(provider.api_key);
    url(provider.base_url);
  }
  url(raw.database_url);
  url(raw.listen_url);
  url(env.DATABASE_URL);
  return [...new Set(found.filter((s): s is string => s !== undefined && s !== ""))];
}

/** `Bearer sk-…` → `sk-…`: servers echo the token without its scheme. */
function schemeless(value: string): string {
  return value.replace(/^(?:Bearer|Basic|Token)\s+/i, "");
}
