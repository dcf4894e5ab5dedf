-- Why: crawled pages are shared by every row and pipeline, so a URL fetched for one row is served from here (or revalidated with its ETag/Last-Modified) instead of being fetched again.
create table :GLEANER_SCHEMA.page_cache (
  url text primary key,
  final_url text not null,
  status integer not null,
  content_type text not null,
  charset text not null,
  body text not null,
  -- JSON-LD, microdata, OpenGraph and meta tags found on the page; NULL until extracted.
  structured jsonb,
  etag text,
  last_modified text,
  fetched_at timestamptz not null,
  bytes integer not null
);
-- Expiry sweeps and "fetched recently" checks read by age.
create index page_cache_fetched_at_idx on :GLEANER_SCHEMA.page_cache (fetched_at);
