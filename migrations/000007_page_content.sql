-- Why: the crawl stage extracts each page's main text (Markdown), links and structured data once
-- per fetch and keeps them with the page, so the extract stage of every row and pipeline that
-- shares the page reads them instead of parsing the HTML again; row state keeps only references.
alter table :GLEANER_SCHEMA.page_cache
  add column title text,
  add column markdown text,
  add column links jsonb,
  -- The body is the DOM after scripts ran in the browser, not the HTML the server sent.
  add column rendered boolean not null default false;
