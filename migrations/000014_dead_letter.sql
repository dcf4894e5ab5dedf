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
