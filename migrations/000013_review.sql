-- Why: a person must be able to check the values Gleaner is least sure of, and to approve, edit
-- or reject them, from plain SQL as well as from the API and the status page (which call the
-- same function, so there is one definition of what a review does). The review writes
-- `origin: human` into the value's provenance; settle-row.ts never replaces such a value, and
-- the reset trigger does not re-open a row for a write that records a review.
--
-- gleaner.pipelines learns each pipeline's outputs (so a review can only touch an output, never
-- an input or the key) and its review_below threshold (what the queue lists).

alter table :GLEANER_SCHEMA.pipelines
  add column outputs text[],
  add column review_below real;

-- review(pipeline, row key, column, action, value, by): action is approve, reject or edit
-- (approved, rejected, edited are accepted too). Returns the column's new provenance.
--   approve: keeps the value, locks it (origin human, confidence 1);
--   edit:    writes `value` (JSON, converted to the column's type) and locks it;
--   reject:  sets the column NULL with reason `rejected`, keeps the rejected value in
--            review.previous, and locks it: the column is not asked again until an input
--            changes (the reset trigger then clears every value and its provenance).
-- The row's confidence becomes the lowest of its outputs' again, a locked one counting 1.
-- Its status and due time are left alone: a row waiting for a low-confidence re-check still
-- gets it for its other columns, and the re-check keeps the reviewed value.
-- Safe under concurrency: the row is locked (FOR UPDATE) between reading the old value and
-- writing the new one; a job holding the row's claim finds its xmin changed and merges again
-- from the fresh row (src/pipeline/guarded-writer.ts), keeping the reviewed value.
create function :GLEANER_SCHEMA.review(
  pipeline text, row_key text, column_name text, action text,
  value jsonb default null, reviewer text default null
) returns jsonb language plpgsql as $fn$
declare
  p :GLEANER_SCHEMA.pipelines%rowtype;
  verb text := case lower(action)
    when 'approve' then 'approved' when 'approved' then 'approved'
    when 'reject' then 'rejected' when 'rejected' then 'rejected'
    when 'edit' then 'edited' when 'edited' then 'edited' end;
  tbl text;
  state_col text;
  old_value jsonb;
  old_prov jsonb;
  new_value jsonb;
  prov jsonb;
  seen boolean;
begin
  select * into p from :GLEANER_SCHEMA.pipelines where name = review.pipeline;
  if not found then
    raise exception 'no pipeline "%" is installed', review.pipeline using errcode = 'P0002';
  end if;
  if verb is null then
    raise exception 'action must be approve, reject or edit, not "%"', review.action
      using errcode = '22023';
  end if;
  if p.outputs is null or not (column_name = any(p.outputs)) then
    raise exception 'column "%" is not an output of pipeline % (outputs: %)', column_name,
      review.pipeline, array_to_string(coalesce(p.outputs, '{}'), ', ') using errcode = '22023';
  end if;
  if verb = 'edited' and (review.value is null or jsonb_typeof(review.value) = 'null') then
    raise exception 'edit needs a value (to remove one, reject it)' using errcode = '22023';
  end if;
  tbl := format('%I.%I', p.table_schema, p.table_name);
  state_col := p.prefix || 'state';
  execute format('select true, to_jsonb(t.%I), t.%I -> ''columns'' -> $2 from %s t
                  where t.%I = $1::%s for update', column_name, state_col, tbl, p.key_column,
                 p.key_type)
    into seen, old_value, old_prov using row_key, column_name;
  -- (EXECUTE does not set FOUND.)
  if seen is null then
    raise exception 'pipeline %: no row with % = %', review.pipeline, p.key_column, row_key
      using errcode = 'P0002';
  end if;
  if verb = 'approved' and (old_value is null or jsonb_typeof(old_value) = 'null') then
    raise exception 'pipeline %: row %: % is NULL, so there is nothing to approve; edit it instead',
      review.pipeline, row_key, column_name using errcode = '22023';
  end if;
  -- The new value, converted to the column's type the way a JSON row is read into the table
  -- (a wrong type fails here, naming the value).
  execute format('select to_jsonb((jsonb_populate_record(null::%s, jsonb_build_object($1, $2))).%I)',
                 tbl, column_name)
    into new_value
    using column_name, case verb when 'approved' then old_value when 'edited' then review.value
                              else 'null'::jsonb end;
  prov := (coalesce(old_prov, '{}'::jsonb) - 'reason')
    || jsonb_build_object(
      'value', new_value,
      'confidence', case when verb = 'rejected' then 0 else 1 end,
      'origin', 'human',
      'review', jsonb_strip_nulls(jsonb_build_object(
        'action', verb,
        'at', to_char(now() at time zone 'utc', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
        'by', reviewer,
        -- What was there before: the rejected value is remembered, and the history shows it.
        'previous', jsonb_strip_nulls(jsonb_build_object(
          'value', old_value,
          'confidence', old_prov -> 'confidence',
          'origin', old_prov -> 'origin')))));
  if verb = 'rejected' then
    prov := prov || jsonb_build_object('reason', 'rejected');
  end if;
  execute format($u$
    update %1$s t set
      %2$I = (jsonb_populate_record(null::%1$s, jsonb_build_object($3::text, $2::jsonb))).%2$I,
      %3$I = jsonb_set(coalesce(t.%3$I, '{}'), '{columns}',
               coalesce(t.%3$I -> 'columns', '{}') || jsonb_build_object($3::text, $4::jsonb)),
      %4$I = case when t.%4$I is null then null else (
        select min(case
          when c.value ->> 'origin' = 'human' then 1
          when jsonb_typeof(c.value -> 'value') is distinct from 'null'
            and c.value -> 'value' is not null then (c.value ->> 'confidence')::real
          else 0 end)
        from jsonb_each(coalesce(t.%3$I -> 'columns', '{}') || jsonb_build_object($3::text, $4::jsonb)) c
        where c.key = any($5)) end
    where t.%5$I = $1::%6$s$u$,
    tbl, column_name, state_col, p.prefix || 'confidence', p.key_column, p.key_type)
    using row_key, new_value, column_name, prov, p.outputs;
  return prov;
end
$fn$;

-- The one definition of a value waiting for review, used by the queue below and by the status
-- page's "under review" filter (src/sql/pipeline-rows.ts): a non-NULL value of a column's
-- provenance, below the threshold, that no reviewer has decided on.
create function :GLEANER_SCHEMA.value_under_review(provenance jsonb, review_below real)
returns boolean language sql immutable as $fn$
  select jsonb_typeof(provenance -> 'value') is distinct from 'null'
    and provenance -> 'value' is not null
    and (provenance ->> 'confidence')::real < review_below
    and (provenance ->> 'origin') is distinct from 'human'
$fn$;

-- The values a person should look at: every non-NULL output below its pipeline's review_below
-- that no reviewer has decided on yet, with its evidence. A set-returning function rather than
-- a view over each table, so that it follows pipelines installed later (ad-hoc ones included)
-- and never holds a dependency that would stop a user dropping their own table.
-- The row's confidence is the lowest of its outputs', so `confidence < review_below` on the
-- row is a necessary condition, tested first; written with the threshold as a literal, as the
-- pipeline's review index (src/db/pipeline-ddl.ts) has it, so the scan reads only that index.
-- `max_rows` stops each pipeline's scan early (the status page asks for the first few).
create function :GLEANER_SCHEMA.review_queue_rows(
  only_pipeline text default null, max_rows integer default null
)
returns table (
  pipeline text, row_key text, column_name text, value jsonb, confidence real,
  origin text, stage text, sources jsonb, quote text, conflicts jsonb, row_status text
) language plpgsql stable as $fn$
declare
  p record;
begin
  for p in
    select * from :GLEANER_SCHEMA.pipelines x
    where (only_pipeline is null or x.name = only_pipeline)
      and x.outputs is not null and x.review_below is not null
      and to_regclass(format('%I.%I', x.table_schema, x.table_name)) is not null
    order by x.name
  loop
    return query execute format($q$
      select %1$L::text, t.%2$I::text, c.key, c.value -> 'value',
             (c.value ->> 'confidence')::real, c.value ->> 'origin', c.value ->> 'stage',
             c.value -> 'sources', c.value ->> 'quote', c.value -> 'conflicts', t.%3$I
      from %4$I.%5$I t cross join lateral jsonb_each(t.%6$I -> 'columns') c
      where t.%7$I < %9$s and c.key = any($2) and %8$s.value_under_review(c.value, $1)
      order by t.%2$I, c.key
      limit $3 $q$,
      p.name, p.key_column, p.prefix || 'status', p.table_schema, p.table_name,
      p.prefix || 'state', p.prefix || 'confidence', ':GLEANER_SCHEMA', p.review_below::text)
    using p.review_below, p.outputs, max_rows;
  end loop;
end
$fn$;

create view :GLEANER_SCHEMA.review_queue as select * from :GLEANER_SCHEMA.review_queue_rows();
