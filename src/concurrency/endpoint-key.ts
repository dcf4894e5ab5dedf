/**
 * Endpoint keys: one adaptive limit per key, and the `endpoint` label of the concurrency metrics.
 * `<kind>:<name>` so LLM backends, search providers and crawled hosts share one namespace (one
 * table, one set of series) without their names colliding.
 */
export function llmEndpoint(backend: string): string {
  return `llm:${backend}`;
}

export function searchEndpoint(provider: string): string {
  return `search:${provider}`;
}

/** Host names are case-insensitive; lower-cased so EXAMPLE.com and example.com share a limit. */
export function hostEndpoint(host: string): string {
  return `host:${host.toLowerCase()}`;
}
