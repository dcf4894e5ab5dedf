-- Why: the `search` stage needs an offline provider (a local corpus indexed with PostgreSQL
-- full-text search, for demos and internal documents) and a shared answer cache keyed by
-- provider and query, so reprocessing rows never pays a hosted search API twice for one query.

create table :GLEANER_SCHEMA.search_documents (
  id bigserial primary key,
  -- Which corpus a document belongs to: one `local` provider searches one corpus.
  corpus text not null,
  -- Unique so re-indexing a folder upserts by URL instead of adding copies.
  url text not null unique,
  title text,
  body text not null,
  -- Title matches weigh more than body matches; 'simple' (no stemming, no stop words) because a
  -- corpus mixes languages and names, which an English dictionary would mangle.
  tsv tsvector generated always as (
    setweight(to_tsvector('simple', coalesce(title, '')), 'A')
      || setweight(to_tsvector('simple', body), 'B')
  ) stored
);
create index search_documents_tsv_idx on :GLEANER_SCHEMA.search_documents using gin (tsv);
create index search_documents_corpus_idx on :GLEANER_SCHEMA.search_documents (corpus);

create table :GLEANER_SCHEMA.search_cache (
  provider text not null,
  -- Normalised (trimmed, spaces collapsed, lower case): see src/search/search-cache.ts.
  query text not null,
  results jsonb not null,
  -- How many results were asked for: a cached answer to a smaller limit cannot serve a larger one.
  requested_limit integer not null,
  fetched_at timestamptz not null default now(),
  primary key (provider, query)
);
