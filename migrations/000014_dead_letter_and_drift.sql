-- Two plain-SQL front doors: the dead letter (below) and the drift allowance (at the end).

-- Why: exhausted rows (no attempt left, or a permanent error) wait for a person. Users look for
-- them with plain SQL, so one view lists them for every pipeline, with the last error and the
-- attempts spent:
--
--   select * from gleaner.dead_letter where pipeline = 'companies';
--
-- and a user's `update <table> set enrichment_status = 'pending'` (or `enrichment_attempts = 0`)
-- sends a row back through the reset trigger (src/db/pipeline-ddl.ts).
--
-- The view reads through a function that walks <schema>.pipelines with dynamic SQL rather than
-- naming the tables: a view naming them would stop users from dropping or recreating their own
-- tables ("other objects depend on it"), and would have to be rebuilt whenever a pipeline (an
-- ad-hoc one from the API included) is installed. Each table is read through its partial
-- `failures` index (status in failed/exhausted), so the cost follows the number of failing rows,
-- not the size of the tables. A table that is gone, or lacks the state columns, is skipped.

create function :GLEANER_SCHEMA.dead_letter_rows()
returns table (
  pipeline text,
  row_key text,
  attempts integer,
  error_class text,
  error_message text,
  error_stage text,
  failed_at timestamptz,
  last_error jsonb,
  last_run jsonb
)
language plpgsql stable as $fn$
declare
  p record;
begin
  for p in select * from :GLEANER_SCHEMA.pipelines order by name loop
    if to_regclass(format('%I.%I', p.table_schema, p.table_name)) is null then
      continue;
    end if;
    begin
      return query execute format(
        $q$select %L::text, t.%I::text, t.%I, e ->> 'class', e ->> 'message', e ->> 'stage',
             (e ->> 'at')::timestamptz, e, t.%I -> 'last_run'
           from %I.%I t cross join lateral (select t.%I -> 'errors' -> -1 as e) last
           where t.%I in ('failed', 'exhausted') and t.%I = 'exhausted'$q$,
        p.name, p.key_column, p.prefix || 'attempts', p.prefix || 'state',
        p.table_schema, p.table_name, p.prefix || 'state', p.prefix || 'status',
        p.prefix || 'status');
    exception when undefined_column or undefined_table then
      -- The table was recreated without Gleaner's columns (or dropped meanwhile): nothing of
      -- this pipeline is waiting; `gleaner migrate` puts the columns back.
      continue;
    end;
  end loop;
end
$fn$;

create view :GLEANER_SCHEMA.dead_letter as select * from :GLEANER_SCHEMA.dead_letter_rows();

-- Why: with `on_version_change: reprocess`, rows an older pipeline version produced are made
-- due again at `drift_rows_per_hour`, whichever processes run the sweep. The allowance is a
-- token bucket per pipeline, shared through this row: a sweep locks it, adds what the time
-- since the last refill earned, releases at most that many rows and takes them off, in one
-- transaction (src/sql/release-drifted-rows.ts).
create table :GLEANER_SCHEMA.drift_allowance (
  pipeline text primary key,
  tokens double precision not null,
  refilled_at timestamptz not null
);
