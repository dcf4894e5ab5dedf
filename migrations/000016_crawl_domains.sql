-- Why: per-site politeness must hold for the whole fleet, not per process, or twenty workers hit
-- a site twenty times as hard as configured. One row per registrable domain (tldts, the public
-- suffix list; an address or a bare name counts as its own host:port) holds what every process
-- must respect before it sends a request there: the next start time (spacing), the slots held
-- now (concurrency, as leases that expire when their process dies), the end of a Retry-After
-- pause, robots.txt's Crawl-delay and the circuit breaker. The statements that take and give back
-- slots are in src/sql/crawl-domain-slots.ts, with their safety argument.

create table :GLEANER_SCHEMA.crawl_domains (
  domain text primary key,
  -- No request to the domain starts before this; each slot granted pushes it on by the spacing.
  next_slot_at timestamptz not null default '-infinity',
  -- No request starts before this either: the latest Retry-After (or 429) any process saw.
  paused_until timestamptz not null default '-infinity',
  -- robots.txt Crawl-delay of the domain as last read, in ms; NULL when none was given.
  crawl_delay_ms integer,
  -- The slots held now, lease id -> expiry (timestamptz as text). Kept in the row, not in a table
  -- of their own, so counting them and adding one happen under the one row lock.
  leases jsonb not null default '{}',
  -- Consecutive host failures seen by any process (a success anywhere resets it).
  failures integer not null default 0,
  -- While failures >= the threshold: no call before this, then one trial call at a time.
  open_until timestamptz not null default '-infinity',
  -- The lease of the trial call let through a half-open circuit (NULL when none runs).
  trial_lease text,
  updated_at timestamptz not null default now()
);
