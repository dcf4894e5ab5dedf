-- Why: a job submitted through the API may declare its own outputs instead of naming a configured
-- pipeline. Its definition is kept here so every Gleaner process (sweepers and workers started
-- before the job existed) can build the same pipeline when its rows come due.

create table :GLEANER_SCHEMA.adhoc_pipelines (
  name text primary key,
  definition jsonb not null,
  created_at timestamptz not null default now()
);
