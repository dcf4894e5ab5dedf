-- Why: Gleaner needs a home of its own for bookkeeping that must not live in users' tables:
-- the pipelines it installed (so `migrate` knows when a table's triggers are stale), per-status
-- row counters kept by triggers (so `status` and /metrics never count a big table), and worker
-- heartbeats (so a missing worker is visible).

create table :GLEANER_SCHEMA.pipelines (
  name text primary key,
  table_schema text not null,
  table_name text not null,
  prefix text not null,
  key_column text not null,
  key_type text not null,
  version text not null,
  ddl_hash text not null,
  installed_at timestamptz not null default now()
);

-- Insert-only deltas: each statement on a pipeline table appends its per-status change, so
-- concurrent writers never wait on a shared counter row. Readers sum; the sweep compacts.
create table :GLEANER_SCHEMA.row_counts (
  pipeline text not null,
  status text not null,
  n bigint not null
);
create index row_counts_pipeline_idx on :GLEANER_SCHEMA.row_counts (pipeline, status);

create table :GLEANER_SCHEMA.workers (
  id text primary key,
  host text not null,
  pid integer not null,
  started_at timestamptz not null default now(),
  heartbeat_at timestamptz not null default now()
);
