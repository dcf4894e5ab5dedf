-- Why: the cost ledger had one line per row a call was for, so a call of ten rows wrote ten
-- lines and a run wrote as many ledger lines as it enriched rows, each with its own index
-- entries: after the rows' own updates, the ledger was the busiest write of a run and soon the
-- largest of Gleaner's tables. A call now writes one line, naming the rows it was for in
-- row_keys; the readers share a line among its rows (src/sql/cost-report.ts for
-- `gleaner cost --by row`, src/sql/answer-history.ts for the answer sizes `gleaner estimate`
-- expects). Lines written before keep their row_key (one row each, holding that row's share);
-- a rolled-up line has neither. Adding a column without a default rewrites nothing.

alter table :GLEANER_SCHEMA.cost_ledger add column row_keys text[];

comment on column :GLEANER_SCHEMA.cost_ledger.row_keys is
  'The rows the call was for, sharing its calls, tokens and cost equally; NULL on lines written per row (row_key) and on rolled-up lines';
