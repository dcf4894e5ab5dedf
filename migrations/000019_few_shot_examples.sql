-- Why: with `examples: true` a pipeline's extraction prompts show the latest values a person
-- approved or edited as few-shot examples (src/stages/few-shot-examples.ts). The examples are
-- part of the question, so a `mode: batch` backend's answer is found again only if the rows
-- that resume ask with the very examples they were queued with. This keeps, per pipeline and
-- stage, the examples section last used; while the stage has a Batch API request not yet
-- handed back to its rows, that section is reused as it is instead of being rebuilt.

create table :GLEANER_SCHEMA.few_shot_examples (
  pipeline text not null,
  stage text not null,
  -- The examples section exactly as the prompts show it ('' when there is none).
  section text not null,
  examples integer not null,
  updated_at timestamptz not null default now(),
  primary key (pipeline, stage)
);

-- "Has this stage a Batch API request still on its way?", asked before every prompt with
-- examples: only unconsumed requests are indexed, a handful, never the whole history.
create index llm_batch_requests_open_stage_idx
  on :GLEANER_SCHEMA.llm_batch_requests (pipeline, stage, created_at)
  where consumed_at is null;
