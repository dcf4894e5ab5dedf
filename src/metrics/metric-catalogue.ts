/**
 * Every metric Gleaner exports: the contract between /metrics, the alert rules in
 * ops/prometheus/ and the dashboards in ops/grafana/. Tests check all three against this list.
 */
export interface MetricSpec {
  name: string;
  type: "counter" | "gauge" | "histogram";
  labels: readonly string[];
  help: string;
}

export const METRICS = [
  // Rows, read from the trigger-kept counters and the due index at scrape time.
  {
    name: "gleaner_rows",
    type: "gauge",
    labels: ["pipeline", "status"],
    help: "Rows per pipeline and status.",
  },
  {
    name: "gleaner_completeness_ratio",
    type: "gauge",
    labels: ["pipeline"],
    help: "Done rows with every output filled, over all rows (1 when the table is empty).",
  },
  {
    name: "gleaner_column_fill_ratio",
    type: "gauge",
    labels: ["pipeline", "column"],
    help: "Rows whose output column is not NULL, over all rows.",
  },
  {
    name: "gleaner_low_confidence_rows",
    type: "gauge",
    labels: ["pipeline"],
    help: "Done rows below the pipeline's min_confidence.",
  },
  {
    name: "gleaner_backlog_rows",
    type: "gauge",
    labels: ["pipeline"],
    help: "Rows due now and not yet claimed; counted up to 10,000, so it saturates there.",
  },
  {
    name: "gleaner_oldest_due_age_seconds",
    type: "gauge",
    labels: ["pipeline"],
    help: "Age of the oldest row due and not yet claimed (0 when none).",
  },
  // Freshness of the columns that declare a ttl (src/metrics/value-age-collectors.ts), read at
  // most every five minutes: one pass over the table each time.
  {
    name: "gleaner_value_age_seconds",
    type: "gauge",
    labels: ["pipeline", "column"],
    help: "Age of the oldest value Gleaner found in a column with a ttl (refreshed every 5 minutes).",
  },
  {
    name: "gleaner_value_age_rows",
    type: "gauge",
    labels: ["pipeline", "column", "le"],
    help: "Values of a ttl column at most `le` seconds old (a cumulative histogram; refreshed every 5 minutes).",
  },
  {
    name: "gleaner_value_ttl_seconds",
    type: "gauge",
    labels: ["pipeline", "column"],
    help: "The ttl a column declares (outputs.<c>.ttl).",
  },
  // The stage machine, from runtime events.
  {
    name: "gleaner_stage_rows_total",
    type: "counter",
    labels: ["pipeline", "stage", "outcome", "error_class"],
    help: "Rows through a stage by outcome (ok, error, skipped) and error class ('' unless error).",
  },
  {
    name: "gleaner_stage_duration_seconds",
    type: "histogram",
    labels: ["pipeline", "stage"],
    help: "Duration of one stage call over a chunk of rows.",
  },
  {
    name: "gleaner_rows_settled_total",
    type: "counter",
    labels: ["pipeline", "status"],
    help: "Rows settled by jobs: done, failed or exhausted.",
  },
  {
    name: "gleaner_row_latency_seconds",
    type: "histogram",
    labels: ["pipeline"],
    help: "From a row becoming due (insert, reset or retry time) to its settled write.",
  },
  {
    name: "gleaner_row_confidence",
    type: "histogram",
    labels: ["pipeline"],
    help: "Confidence of rows settled done.",
  },
  {
    name: "gleaner_rows_released_total",
    type: "counter",
    labels: ["pipeline"],
    help: "Rows handed back by jobs on shutdown.",
  },
  {
    name: "gleaner_prompt_truncations_total",
    type: "counter",
    labels: ["pipeline", "stage"],
    help: "Rows whose field values were cut to fit a prompt (max_row_input_chars).",
  },
  // LLM calls.
  {
    name: "gleaner_llm_calls_total",
    type: "counter",
    labels: ["backend", "model", "outcome", "error_class"],
    help: "LLM calls made to a backend by outcome (ok, error) and error class ('' when ok); answers from the answer cache are not calls.",
  },
  {
    name: "gleaner_llm_call_duration_seconds",
    type: "histogram",
    labels: ["backend", "model"],
    help: "Duration of one LLM call.",
  },
  {
    name: "gleaner_llm_tokens_total",
    type: "counter",
    labels: ["backend", "model", "direction"],
    help: "Tokens sent (input) and received (output).",
  },
  {
    name: "gleaner_llm_cost_usd_total",
    type: "counter",
    labels: ["backend", "model"],
    help: "Cost in US dollars, from the config's price table.",
  },
  {
    name: "gleaner_llm_cache_lookups_total",
    type: "counter",
    labels: ["backend", "outcome"],
    help: "LLM answer cache lookups (llm.cache_ttl) by outcome: hit (answered free, not counted as a call) or miss (the backend was asked).",
  },
  {
    name: "gleaner_llm_budget_usd_per_hour",
    type: "gauge",
    labels: [],
    help: "The configured LLM budget (llm.budget_usd_per_hour); absent when none.",
  },
  // Budgets (src/budget/), read from <schema>.budget_windows at scrape time: the same in every
  // process. pipeline "_all" is llm.budget, the cap on all pipelines together.
  {
    name: "gleaner_budget_spent_usd",
    type: "gauge",
    labels: ["pipeline", "window"],
    help: "Spent (settled) in the current budget window (hour or day, UTC), by every process.",
  },
  {
    name: "gleaner_budget_limit_usd",
    type: "gauge",
    labels: ["pipeline", "window"],
    help: "The configured cap of each budget window (per_hour_usd, per_day_usd).",
  },
  {
    name: "gleaner_budget_waiting_rows",
    type: "gauge",
    labels: ["pipeline"],
    help: "Rows waiting for a budget window to reset (failed, class budget_exhausted); counted up to 10,000.",
  },
  {
    name: "gleaner_budget_refusals_total",
    type: "counter",
    labels: ["pipeline"],
    help: "Paid calls a budget cap refused in this process.",
  },
  // Batch API (`mode: batch` backends), read from <schema>.llm_batches at scrape time.
  {
    name: "gleaner_llm_batches_in_flight",
    type: "gauge",
    labels: [],
    help: "Batch API batches submitted (or being submitted) and not yet applied.",
  },
  {
    name: "gleaner_llm_batch_rows_waiting",
    type: "gauge",
    labels: ["pipeline"],
    help: "Rows waiting for a Batch API answer (pending, with enrichment_state.batch set).",
  },
  {
    name: "gleaner_llm_batch_saved_usd",
    type: "gauge",
    labels: [],
    help: "USD saved by the Batch API discount on the answers applied so far (live price minus batch price).",
  },
  // Web research: searches, pages, refusals (counted by this process).
  {
    name: "gleaner_search_requests_total",
    type: "counter",
    labels: ["provider", "outcome"],
    help: "Searches by provider and outcome: hit (search cache), call (provider asked), shared (joined a call in flight), error.",
  },
  {
    name: "gleaner_crawl_pages_total",
    type: "counter",
    labels: ["path", "outcome"],
    help: "Pages the crawl stage asked for, by path (fetch, browser, cache) and outcome (ok or the error class).",
  },
  {
    name: "gleaner_crawl_bytes_total",
    type: "counter",
    labels: ["path"],
    help: "Bytes of pages fetched (fetch) or rendered (browser).",
  },
  {
    name: "gleaner_crawl_refusals_total",
    type: "counter",
    labels: ["reason"],
    help: "URLs refused before any request: by robots.txt, or by the SSRF guard (non-public addresses).",
  },
  // Adaptive concurrency per endpoint (llm:<backend>, search:<provider>, host:<name>).
  {
    name: "gleaner_concurrency_limit",
    type: "gauge",
    labels: ["endpoint"],
    help: "Calls this process may make at once to an endpoint: its share of the adaptive fleet-wide limit.",
  },
  {
    name: "gleaner_calls_in_flight",
    type: "gauge",
    labels: ["endpoint"],
    help: "Calls from this process to an endpoint in flight now.",
  },
  {
    name: "gleaner_throttle_events_total",
    type: "counter",
    labels: ["endpoint"],
    help: "Times an endpoint asked this process to slow down (429 or 503), each lowering its limit.",
  },
  // Queue, sweeps, workers.
  {
    name: "gleaner_queue_jobs",
    type: "gauge",
    labels: ["state"],
    help: "graphile-worker jobs: ready, scheduled (run_at in the future), locked, failed (no attempts left).",
  },
  {
    name: "gleaner_job_failures_total",
    type: "counter",
    labels: [],
    help: "Jobs that could not finish in this process (their rows come back after the lease).",
  },
  {
    name: "gleaner_sweep_rows_claimed_total",
    type: "counter",
    labels: ["pipeline"],
    help: "Rows claimed and enqueued by this process's sweeps.",
  },
  {
    name: "gleaner_sweep_duration_seconds",
    type: "histogram",
    labels: ["pipeline"],
    help: "Duration of one sweep tick.",
  },
  {
    name: "gleaner_workers_alive",
    type: "gauge",
    labels: [],
    help: "Worker processes whose heartbeat is under 30 s old.",
  },
  {
    name: "gleaner_worker_heartbeat_age_seconds",
    type: "gauge",
    labels: ["worker"],
    help: "Seconds since each registered worker's last heartbeat.",
  },
] as const satisfies readonly MetricSpec[];

export type MetricName = (typeof METRICS)[number]["name"];

/**
 * Default process metrics carry this prefix before prom-client's own names:
 * gleaner_process_process_cpu_seconds_total, gleaner_process_nodejs_eventloop_lag_seconds, ...
 */
export const PROCESS_METRICS_PREFIX = "gleaner_process_";
