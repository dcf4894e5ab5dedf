/**
 * The `endpoint` label of the concurrency and throttling metrics: `<kind>:<name>`, so LLM
 * backends, and later search providers and fetched hosts, share one set of series without their
 * names colliding.
 */
export function llmEndpoint(backend: string): string {
  return `llm:${backend}`;
}
