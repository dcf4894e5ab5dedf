-- Why: adaptive (AIMD) concurrency limits must hold for the whole fleet, not per process, or four
-- workers each send a provider the full limit and each back off on their own. One row per
-- endpoint (`llm:<backend>`, `search:<provider>`, `host:<name>`) holds the fleet-wide limit and
-- the end of a Retry-After pause; every process takes its share of the limit (divided by the live
-- workers of gleaner.workers) and re-reads the rows about once a second.

create table :GLEANER_SCHEMA.concurrency_limits (
  endpoint text primary key,
  -- Calls allowed at once across all processes; kept within [min_limit, max_limit] by the
  -- statements in src/sql/adjust-concurrency-limits.ts.
  global_limit integer not null,
  min_limit integer not null,
  max_limit integer not null,
  -- No new calls to the endpoint before this time (the longest Retry-After seen).
  paused_until timestamptz,
  updated_at timestamptz not null default now(),
  check (min_limit >= 1 and max_limit >= min_limit),
  check (global_limit between min_limit and max_limit)
);
