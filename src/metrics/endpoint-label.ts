// The `endpoint` label is the adaptive concurrency registry's endpoint key; one definition.
export { hostEndpoint, llmEndpoint, searchEndpoint } from "../concurrency/endpoint-key.ts";
