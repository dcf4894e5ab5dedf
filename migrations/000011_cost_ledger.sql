-- Why: nothing stopped spending. Every paid call (LLM or search) now reserves its estimated cost
-- against the budget windows that apply to it before it is made, and settles the actual cost
-- after (src/sql/budget-ledger.ts); the ledger keeps what was spent, per row, for `gleaner cost`
-- and for the answer sizes `gleaner estimate` expects.

-- One line per row a settled call was for: the call's cost divided among its rows. Lines older
-- than the retention period are rolled up into one line per day, pipeline, stage, backend and
-- model with row_key NULL, so the table stays small.
create table :GLEANER_SCHEMA.cost_ledger (
  id bigint generated always as identity primary key,
  at timestamptz not null,
  pipeline text not null,
  stage text not null,
  -- The LLM backend's or the search provider's name.
  backend text not null,
  -- The model that answered; "search" for a search request.
  model text not null,
  -- NULL on a rolled-up line.
  row_key text,
  -- Calls this line stands for: 1/rows of a call per row, summed by the roll-up.
  calls double precision not null,
  input_tokens double precision not null,
  output_tokens double precision not null,
  cost_usd double precision not null,
  -- live, or batch (the Batch API's half price) for another helper's batch mode.
  mode text not null default 'live',
  rolled_up boolean not null default false
);
create index cost_ledger_pipeline_at_idx on :GLEANER_SCHEMA.cost_ledger (pipeline, at);

-- What a budget window has spent so far; the row every reservation of the window locks.
-- scope: "global" (llm.budget) or "pipeline:<name>"; kind: hour or day.
create table :GLEANER_SCHEMA.budget_windows (
  scope text not null,
  kind text not null check (kind in ('hour', 'day')),
  window_start timestamptz not null,
  spent_usd double precision not null default 0,
  primary key (scope, kind, window_start)
);

-- Money promised to calls in flight. A process that dies between reserve and settle leaves its
-- reservation behind; it stops counting at expires_at.
create table :GLEANER_SCHEMA.budget_reservations (
  id uuid not null,
  scope text not null,
  kind text not null,
  window_start timestamptz not null,
  amount_usd double precision not null,
  expires_at timestamptz not null,
  primary key (id, scope, kind, window_start)
);
create index budget_reservations_window_idx
  on :GLEANER_SCHEMA.budget_reservations (scope, kind, window_start);
