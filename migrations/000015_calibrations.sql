-- Why: a model that says 0.9 is not right nine times in ten. `gleaner eval` measures, against a
-- golden set, how often each pipeline's values are right at each confidence, and a pipeline with
-- `calibrate: true` maps the confidences it settles through what was measured
-- (src/pipeline/confidence-calibration.ts). One mapping per pipeline, backend and column: the
-- same model is sure and right about a founding year far more often than about an industry.

create table :GLEANER_SCHEMA.calibrations (
  pipeline text not null,
  -- The LLM backend that answered, or for a value read from structured data its origin
  -- (json-ld, microdata, opengraph, meta).
  backend text not null,
  column_name text not null,
  -- [[raw, calibrated], ...], raw increasing, calibrated non-decreasing: an isotonic fit of
  -- "right" on the raw confidence; applied by linear interpolation between the points.
  points jsonb not null,
  -- Cells (filled, with a known value) the mapping was learnt from.
  samples integer not null,
  -- Expected calibration error of those cells before and after the mapping (in-sample).
  ece_before real not null,
  ece_after real not null,
  -- The pipeline version the eval ran: a mapping learnt for another prompt or model may be off.
  version text not null,
  learnt_at timestamptz not null default now(),
  primary key (pipeline, backend, column_name)
);
