-- Why: the REST API submits rows in batches that users track, cancel and resume as "jobs". The
-- rows live in the pipeline's own table like any others (the same sweep processes them);
-- api_job_rows only links each row to the job that submitted it.

create table :GLEANER_SCHEMA.api_jobs (
  id uuid primary key default gen_random_uuid(),
  pipeline text not null,
  status text not null default 'active' check (status in ('active', 'cancelled')),
  total integer not null,
  created_at timestamptz not null default now(),
  cancelled_at timestamptz,
  resumed_at timestamptz
);
create index api_jobs_created_idx on :GLEANER_SCHEMA.api_jobs (created_at desc);

create table :GLEANER_SCHEMA.api_job_rows (
  job_id uuid not null references :GLEANER_SCHEMA.api_jobs (id) on delete cascade,
  row_key text not null,
  primary key (job_id, row_key)
);
