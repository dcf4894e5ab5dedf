-- Why: `mode: batch` backends send non-urgent calls through the OpenAI Batch API (half the
-- price, answered within 24 h). A batch lives longer than any process, so what was asked, in
-- which batch, and what came back is kept here, written BEFORE each step that talks to the
-- API: any process can then finish a batch another one started, and nothing is applied twice
-- (src/llm/batch/, src/sql/llm-batches.ts, src/sql/resume-batch-rows.ts).

create table :GLEANER_SCHEMA.llm_batches (
  id bigserial primary key,
  backend text not null,
  -- Client idempotency marker, written before the upload and sent as the batch's metadata: a
  -- process that crashed between creating the batch and recording its id finds it again by this
  -- marker instead of submitting the same requests twice.
  marker uuid not null unique,
  -- submitting: recorded, not yet known to the API; in_flight: created, being polled;
  -- done: its answers are recorded; failed: expired, cancelled or refused (reason says which).
  state text not null check (state in ('submitting', 'in_flight', 'done', 'failed')),
  api_batch_id text unique,
  input_file_id text,
  requests integer not null,
  reason text,
  created_at timestamptz not null default now(),
  submitted_at timestamptz,
  finished_at timestamptz
);
create index llm_batches_open_idx on :GLEANER_SCHEMA.llm_batches (id)
  where state in ('submitting', 'in_flight');

create table :GLEANER_SCHEMA.llm_batch_requests (
  -- The JSONL line's custom_id; rows waiting for it carry it in enrichment_state.batch.request.
  custom_id uuid primary key,
  backend text not null,
  -- sha256 of the question (src/llm/answer-cache.ts answerCacheKey): the rerun of the rows
  -- asks the same question and is answered from here.
  request_key text not null,
  -- Which pipeline and stage asked, for the resume and for people reading the table.
  pipeline text not null,
  stage text not null,
  -- The chat completions body exactly as the live call would send it.
  body jsonb not null,
  batch_id bigint references :GLEANER_SCHEMA.llm_batches (id),
  -- queued: waiting for the next batch; submitted: in a batch; answered / failed: its line came
  -- back (or the batch ended without it). consumed_at marks the answer handed to a stage once.
  state text not null check (state in ('queued', 'submitted', 'answered', 'failed')),
  -- The chat completion the API returned for this line (answered).
  response jsonb,
  reason text,
  -- Full price minus batch price of this request's tokens, for the savings metric.
  saved_usd double precision not null default 0,
  created_at timestamptz not null default now(),
  answered_at timestamptz,
  consumed_at timestamptz
);
create index llm_batch_requests_queued_idx on :GLEANER_SCHEMA.llm_batch_requests (backend, created_at)
  where state = 'queued';
create index llm_batch_requests_batch_idx on :GLEANER_SCHEMA.llm_batch_requests (batch_id);
create index llm_batch_requests_key_idx on :GLEANER_SCHEMA.llm_batch_requests (request_key)
  where consumed_at is null;
