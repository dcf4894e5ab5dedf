import { isIP } from "node:net";
import { classifyAddress } from "../core/address-ranges.ts";
import type { LlmBackendConfig } from "./config-types.ts";
import { ConfigError } from "./config-error.ts";
import type { RawBackend } from "./config-schema.ts";
import { splitBaseUrl } from "./split-base-url.ts";

/**
 * `llm.backends` resolved: names unique, concurrency bounds in order, no credentials in a
 * base_url and its query string moved to `query`; and the optional backends that cannot work (a
 * hosted API with no key), switched off with the reason.
 */
export function resolveBackends(raw: readonly RawBackend[]): {
  backends: LlmBackendConfig[];
  backendsOff: Map<string, string>;
} {
  const backends: LlmBackendConfig[] = raw.map((b, i) => {
    const url = new URL(b.base_url);
    if (url.username || url.password)
      throw new ConfigError(
        `llm.backends[${i}].base_url`,
        "must not contain a user name or password: put the key in api_key (or headers)",
      );
    const { baseUrl, query } = splitBaseUrl(b.base_url, b.query);
    return {
      name: b.name,
      base_url: baseUrl,
      // `${KEY:-}` gives "": that means no key (no Authorization header), as when it is unset.
      api_key: b.api_key === "" ? undefined : b.api_key,
      model: b.model,
      timeout_ms: b.timeout,
      max_concurrency: b.max_concurrency,
      min_concurrency: b.min_concurrency,
      structured_output: b.structured_output,
      temperature: b.temperature,
      headers: b.headers,
      query,
      price: b.price,
      // Only a batch backend carries its batch settings: a live one resolves as before.
      ...(b.mode === "batch"
        ? { mode: b.mode, batch_window_ms: b.batch_window, batch_max_requests: b.batch_limit }
        : {}),
    };
  });
  const names = new Set<string>();
  backends.forEach((b, i) => {
    if (names.has(b.name))
      throw new ConfigError(`llm.backends[${i}].name`, `"${b.name}" is used twice`);
    if (b.min_concurrency !== undefined && b.min_concurrency > b.max_concurrency)
      throw new ConfigError(
        `llm.backends[${i}].min_concurrency`,
        `${b.min_concurrency} is above max_concurrency ${b.max_concurrency}: lower it or raise max_concurrency`,
      );
    names.add(b.name);
  });
  const backendsOff = new Map<string, string>();
  raw.forEach((b, i) => {
    const resolved = backends[i] as LlmBackendConfig;
    if (
      b.optional &&
      resolved.api_key === undefined &&
      !b.headers &&
      !isLocalUrl(resolved.base_url)
    )
      backendsOff.set(
        b.name,
        `optional backend ${b.name} is off: ${resolved.base_url} is a hosted API and it has no api_key`,
      );
  });
  return { backends, backendsOff };
}

/** Loopback, private or single-label hosts (`ollama` in docker-compose) need no key to work. */
function isLocalUrl(url: string): boolean {
  const host = new URL(url).hostname.replace(/^\[|\]$/g, "");
  if (host === "localhost" || !host.includes(".")) return true;
  return isIP(host) !== 0 && !classifyAddress(host).allowed;
}
