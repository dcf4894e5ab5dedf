import { sql, type RawBuilder } from "kysely";
import type { Db } from "../db/connect-database.ts";
import { reviewBelowLiteral, type RowStatus } from "../db/pipeline-ddl.ts";
import type { InstalledPipeline } from "../pipeline/installed-pipeline.ts";
import type { ColumnProvenance } from "../pipeline/row-state.ts";

/** What the status page's rows view filters on; every filter is optional. */
export interface RowsFilter {
  status?: RowStatus;
  /** An input or output that must be NULL. */
  nullColumn?: string;
  /** The row's confidence is below this. */
  below?: number;
  /** Only rows with a value waiting for review (<schema>.value_under_review). */
  review?: boolean;
}

export interface PipelineRow {
  key: string;
  status: RowStatus;
  confidence: number | null;
  attempts: number;
  enriched_at: string | null;
  inputs: Record<string, unknown>;
  values: Record<string, unknown>;
  columns: Record<string, ColumnProvenance>;
  /** Outputs whose value waits for review. */
  under_review: string[];
}

export interface RowsPage {
  rows: PipelineRow[];
  /** The key to pass as `after` for the next page; null on the last page. */
  next: string | null;
}

/**
 * One page of a pipeline's rows in key order, after the key `after` (keyset paging): the
 * statement walks the key's unique index from `after` and stops after `limit + 1` rows, so page
 * 500 costs what page 1 costs; no OFFSET, which would read and throw away every earlier row.
 * Filters only narrow that walk. Read-only; it takes no locks beyond a snapshot.
 */
export function rowsPageQuery(
  p: InstalledPipeline,
  schema: string,
  filter: RowsFilter,
  after: string | undefined,
  limit: number,
): RawBuilder<PipelineRow> {
  const c = p.columns;
  const key = sql.ref(`t.${p.key}`);
  const conditions: RawBuilder<unknown>[] = [sql`true`];
  if (after !== undefined) conditions.push(sql`${key} > ${after}::${sql.raw(p.keyType)}`);
  if (filter.status) conditions.push(sql`${sql.ref(`t.${c.status}`)} = ${filter.status}`);
  if (filter.nullColumn) conditions.push(sql`${sql.ref(`t.${filter.nullColumn}`)} is null`);
  if (filter.below !== undefined)
    conditions.push(sql`${sql.ref(`t.${c.confidence}`)} < ${filter.below}`);
  if (filter.review) {
    // The row's confidence is the lowest of its outputs': a necessary condition, written as the
    // review index's predicate (src/db/pipeline-ddl.ts) so the walk uses that index.
    conditions.push(sql`${sql.ref(`t.${c.confidence}`)} < ${sql.raw(reviewBelowLiteral(p))}
      and exists (select 1 from jsonb_each(${sql.ref(`t.${c.state}`)} -> 'columns') rc
        where rc.key = any(${outputNames(p)}::text[])
          and ${sql.id(schema)}.value_under_review(rc.value, ${p.reviewBelow}))`);
  }
  return sql<PipelineRow>`
    select ${key}::text as key, ${rowFields(p, schema)}
    from ${sql.table(`${p.table.schema}.${p.table.name}`)} t
    where ${sql.join(conditions, sql` and `)}
    order by ${key}
    limit ${limit + 1}`;
}

export async function readRowsPage(
  db: Db,
  p: InstalledPipeline,
  schema: string,
  filter: RowsFilter,
  after: string | undefined,
  limit: number,
): Promise<RowsPage> {
  const { rows } = await rowsPageQuery(p, schema, filter, after, limit).execute(db);
  const page = rows.slice(0, limit);
  return { rows: page, next: rows.length > limit ? (page.at(-1)?.key ?? null) : null };
}

/** Rows by key (the cell panel, live updates); missing keys are left out. */
export async function readRowsByKey(
  db: Db,
  p: InstalledPipeline,
  schema: string,
  keys: readonly string[],
): Promise<(PipelineRow & { xmin: string; state: unknown })[]> {
  if (keys.length === 0) return [];
  const key = sql.ref(`t.${p.key}`);
  const { rows } = await sql<PipelineRow & { xmin: string; state: unknown }>`
    select ${key}::text as key, t.xmin::text as xmin, ${sql.ref(`t.${p.columns.state}`)} as state,
      ${rowFields(p, schema)}
    from ${sql.table(`${p.table.schema}.${p.table.name}`)} t
    where ${key} = any(${keys}::${sql.raw(p.keyType)}[])
    order by ${key}`.execute(db);
  return rows;
}

/** Each row's xmin: what changes when anything in the row does (live updates poll it). */
export async function readRowVersions(
  db: Db,
  p: InstalledPipeline,
  keys: readonly string[],
): Promise<Map<string, string>> {
  if (keys.length === 0) return new Map();
  const key = sql.ref(`t.${p.key}`);
  const { rows } = await sql<{ key: string; xmin: string }>`
    select ${key}::text as key, t.xmin::text as xmin
    from ${sql.table(`${p.table.schema}.${p.table.name}`)} t
    where ${key} = any(${keys}::${sql.raw(p.keyType)}[])`.execute(db);
  return new Map(rows.map((r) => [r.key, r.xmin]));
}

function outputNames(p: InstalledPipeline): string[] {
  return p.outputs.map((o) => o.name);
}

/** Everything of a row the rows view shows, each input and output as JSON (types kept). */
function rowFields(p: InstalledPipeline, schema: string) {
  const c = p.columns;
  const object = (names: readonly string[]) =>
    names.length === 0
      ? sql`'{}'::jsonb`
      : sql`jsonb_build_object(${sql.join(
          names.map((n) => sql`${n}::text, to_jsonb(${sql.ref(`t.${n}`)})`),
        )})`;
  const columns = sql`coalesce(${sql.ref(`t.${c.state}`)} -> 'columns', '{}'::jsonb)`;
  return sql`${sql.ref(`t.${c.status}`)} as status,
      ${sql.ref(`t.${c.confidence}`)} as confidence,
      ${sql.ref(`t.${c.attempts}`)} as attempts,
      ${sql.ref(`t.${c.enrichedAt}`)} as enriched_at,
      ${object(p.inputs)} as inputs,
      ${object(outputNames(p))} as values,
      ${columns} as columns,
      array(select rc.key from jsonb_each(${columns}) rc
        where rc.key = any(${outputNames(p)}::text[])
          and ${sql.id(schema)}.value_under_review(rc.value, ${p.reviewBelow})
        order by rc.key) as under_review`;
}
