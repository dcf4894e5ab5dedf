import type { GleanerConfig, LlmBackendConfig } from "./config-types.ts";

/**
 * The backends whose calls may go to the OpenAI Batch API: those with `mode: batch`, and those a
 * `mode: batch` llm or extract stage names. The batch task submits and polls for each of them.
 */
export function batchApiBackends(
  config: Pick<GleanerConfig, "backends" | "pipelines">,
): LlmBackendConfig[] {
  const named = new Set(
    config.pipelines.flatMap((p) =>
      p.stages.flatMap((s) =>
        (s.kind === "llm" || s.kind === "extract") && s.mode === "batch" ? s.backends : [],
      ),
    ),
  );
  return config.backends.filter((b) => b.mode === "batch" || named.has(b.name));
}
