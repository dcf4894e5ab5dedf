-- Why: a fleet of worker processes on many hosts shares one database, and `gleaner status` and the
-- status page list the live ones. A row already says which host and pid; an operator rolling out a
-- new release also needs each process's Gleaner version (to see which ones still run the old
-- one), and how busy it is: the graphile-worker jobs it runs at this moment, written with every
-- heartbeat (src/worker/worker-heartbeat.ts). Both are filled by the process itself; a row written
-- by an older process keeps the defaults.

alter table :GLEANER_SCHEMA.workers
  add column version text not null default '',
  add column jobs_in_flight integer not null default 0;
