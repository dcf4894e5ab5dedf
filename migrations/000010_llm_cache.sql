-- Why: an LLM answer already paid for must not be paid again. Retries, low-confidence re-checks,
-- reprocessing and resets ask the same question with the same evidence; the validated answer is
-- kept here, shared by every process, and served for llm.cache_ttl (src/llm/answer-cache.ts,
-- src/sql/llm-cache.ts).

create table :GLEANER_SCHEMA.llm_cache (
  -- sha256 (hex) of the backend's model, its base URL without credentials or query, its
  -- temperature and structured_output mode, the exact system and user messages, the answer
  -- schema and its name: a change to any of them is another question.
  key text primary key,
  -- For people reading the table; not part of the key (renaming a backend keeps its answers).
  backend text not null,
  -- The model that answered, as the backend reported it.
  model text not null,
  -- The parsed answer as JSON text, kept as text so the stage re-validates exactly what it
  -- validated the first time (jsonb would reorder keys and refuse \u0000).
  answer text not null,
  -- What the original call used: a hit records them as saved, never as spent.
  input_tokens integer not null,
  output_tokens integer not null,
  cost_usd double precision not null,
  written_at timestamptz not null default now()
);
-- Expired answers are ignored by reads and removed in small batches, oldest first.
create index llm_cache_written_at_idx on :GLEANER_SCHEMA.llm_cache (written_at);
