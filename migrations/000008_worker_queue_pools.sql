-- Why: a worker process killed just after graphile-worker locked a job leaves that job locked
-- and its rows `queued` until queue_timeout (30 min by default), far past the lease. Each
-- process now lists the graphile-worker pools it runs (a pool's id is what graphile-worker
-- writes in jobs.locked_by), so any live process can tell a job held by a dead process from one
-- held by a live one, give the dead job's rows back at once and delete the job
-- (src/sql/reap-dead-jobs.ts). A process whose runner restarted (a database outage) drops its
-- old pool from the list, and its jobs are reaped the same way.

alter table :GLEANER_SCHEMA.workers
  add column pools text[] not null default '{}';
