import type { Registry } from "prom-client";
import type { LlmAttempt } from "../llm/llm-types.ts";
import type { Runtime } from "../pipeline/runtime.ts";
import type { RuntimeEventMap } from "../pipeline/runtime-events.ts";
import { cataloguedCounter, cataloguedHistogram } from "./catalogued-metric.ts";

// Buckets in seconds: a stage chunk or an LLM call takes from tens of milliseconds (a local
// model, a custom stage) to the backend's timeout (60 s by default).
const CALL_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120];
// A row waits from well under a second (NOTIFY wakes the sweep) to hours (a backlog, retries).
const ROW_LATENCY_BUCKETS = [0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 1800, 3600, 14400, 86400];
// Confidence is 0..1; finer near the top, where min_confidence thresholds usually sit.
const CONFIDENCE_BUCKETS = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 1];

/**
 * Counters and histograms fed by the stage machine's events (src/pipeline/runtime-events.ts),
 * so the machine knows nothing about Prometheus. They count what this process did; Prometheus
 * sums the processes. Returns the function that unsubscribes them.
 */
export function attachRuntimeEventMetrics(registry: Registry, runtime: Runtime): () => void {
  const stageRows = cataloguedCounter(registry, "gleaner_stage_rows_total");
  const stageDuration = cataloguedHistogram(registry, "gleaner_stage_duration_seconds", {
    buckets: CALL_BUCKETS,
  });
  const settled = cataloguedCounter(registry, "gleaner_rows_settled_total");
  const latency = cataloguedHistogram(registry, "gleaner_row_latency_seconds", {
    buckets: ROW_LATENCY_BUCKETS,
  });
  const confidence = cataloguedHistogram(registry, "gleaner_row_confidence", {
    buckets: CONFIDENCE_BUCKETS,
  });
  const released = cataloguedCounter(registry, "gleaner_rows_released_total");
  const truncations = cataloguedCounter(registry, "gleaner_prompt_truncations_total");
  const llmCalls = cataloguedCounter(registry, "gleaner_llm_calls_total");
  const llmDuration = cataloguedHistogram(registry, "gleaner_llm_call_duration_seconds", {
    buckets: CALL_BUCKETS,
  });
  const tokens = cataloguedCounter(registry, "gleaner_llm_tokens_total");
  const cost = cataloguedCounter(registry, "gleaner_llm_cost_usd_total");
  const cacheLookups = cataloguedCounter(registry, "gleaner_llm_cache_lookups_total");

  // Series that alerts take rates of start at 0, so the first event is an increase and not the
  // appearance of a series (rate() and increase() see nothing in a series' first sample).
  for (const { pipeline } of runtime.pipelines.values()) {
    for (const status of ["done", "failed", "exhausted"])
      settled.inc({ pipeline: pipeline.name, status }, 0);
    released.inc({ pipeline: pipeline.name }, 0);
    for (const stage of pipeline.stages)
      if (stage.kind === "llm" || stage.kind === "extract")
        truncations.inc({ pipeline: pipeline.name, stage: stage.name }, 0);
  }
  if (runtime.config.llmCacheTtlMs > 0)
    for (const backend of runtime.backends.keys())
      for (const outcome of ["hit", "miss"]) cacheLookups.inc({ backend, outcome }, 0);

  const countCall = (call: LlmAttempt) => {
    // An answer from the cache is no call and costs nothing: the cost counter stays the money
    // actually spent. It is counted by gleaner_llm_cache_lookups_total.
    if (call.outcome === "cached") return;
    const { backend, model } = call;
    const errorClass = call.outcome === "ok" ? "" : (call.errorClass ?? "unknown");
    llmCalls.inc({ backend, model, outcome: call.outcome, error_class: errorClass });
    llmDuration.observe({ backend, model }, call.durationMs / 1000);
    tokens.inc({ backend, model, direction: "input" }, call.inputTokens);
    tokens.inc({ backend, model, direction: "output" }, call.outputTokens);
    cost.inc({ backend, model }, call.costUsd);
  };

  const onChunk = (e: RuntimeEventMap["stage:chunk"]) => {
    const { pipeline, stage } = e;
    if (e.ok > 0) stageRows.inc({ pipeline, stage, outcome: "ok", error_class: "" }, e.ok);
    for (const [errorClass, rows] of Object.entries(e.failed))
      stageRows.inc({ pipeline, stage, outcome: "error", error_class: errorClass }, rows);
    stageDuration.observe({ pipeline, stage }, e.durationMs / 1000);
    if (e.truncatedRows > 0) truncations.inc({ pipeline, stage }, e.truncatedRows);
    for (const call of e.calls) countCall(call);
  };
  const onSkipped = (e: RuntimeEventMap["stage:skipped"]) => {
    stageRows.inc(
      { pipeline: e.pipeline, stage: e.stage, outcome: "skipped", error_class: "" },
      e.rows,
    );
  };
  const onSettled = (e: RuntimeEventMap["row:settled"]) => {
    settled.inc({ pipeline: e.pipeline, status: e.status });
    if (e.latencyMs !== null) latency.observe({ pipeline: e.pipeline }, e.latencyMs / 1000);
    if (e.status === "done" && e.confidence !== null)
      confidence.observe({ pipeline: e.pipeline }, e.confidence);
  };
  const onReleased = (e: RuntimeEventMap["rows:released"]) => {
    released.inc({ pipeline: e.pipeline }, e.rows);
  };
  const onCacheLookup = (e: RuntimeEventMap["llm:cache"]) => {
    cacheLookups.inc({ backend: e.backend, outcome: e.outcome });
  };

  const { events } = runtime;
  events.on("stage:chunk", onChunk);
  events.on("stage:skipped", onSkipped);
  events.on("row:settled", onSettled);
  events.on("rows:released", onReleased);
  events.on("llm:cache", onCacheLookup);
  return () => {
    events.off("stage:chunk", onChunk);
    events.off("stage:skipped", onSkipped);
    events.off("row:settled", onSettled);
    events.off("rows:released", onReleased);
    events.off("llm:cache", onCacheLookup);
  };
}
