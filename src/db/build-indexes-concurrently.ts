import { sql, type Kysely } from "kysely";
import type { PipelineConfig } from "../config/config-types.ts";
import { PG, pgErrorCode } from "../core/pg-error-codes.ts";
import type { GleanerDatabase } from "./database-types.ts";
import { pipelineIndexes, type PipelineIndex } from "./pipeline-ddl.ts";
import { quoteIdent, quoteLiteral } from "./quote-identifier.ts";
import { stateColumns } from "./state-columns.ts";

interface ExistingIndex {
  name: string;
  valid: boolean;
  /** A concurrent build of it is running now (pg_stat_progress_create_index). */
  building: boolean;
  comment: string | null;
}

/**
 * Builds the indexes a pipeline's existing table lacks with `CREATE INDEX CONCURRENTLY`, before
 * the install transaction (src/db/migrate.ts), so that an upgrade which adds an index to a big
 * table does not hold its writers for the build: the transaction's `create index if not exists`
 * then finds it built. Returns the names it built.
 *
 * Why it is safe:
 * - A build cut short (a killed migrator, a failed build) leaves an invalid index under the
 *   name, which `if not exists` would keep forever: an invalid one is dropped (concurrently) and
 *   built again. The review index is also rebuilt when its comment says it was built for
 *   another `review_below`, and given its comment here, so the transaction keeps it.
 * - Two migrators need no lock between them (a session lock would not hold through a
 *   transaction pooler): an index another one is building now is left to it, and a name it
 *   created at the same instant is taken as its build. The install transaction still runs
 *   under its advisory lock, one migrator at a time.
 * - Nothing is built for a table that does not exist yet (the transaction creates it), a
 *   partitioned one (PostgreSQL 15 cannot build those concurrently) or one without Gleaner's
 *   state columns (add-state-columns-online.ts adds them to a plain table first, so only a
 *   table it left alone): the transaction builds those as before.
 */
export async function buildIndexesConcurrently(
  db: Kysely<GleanerDatabase>,
  pipeline: PipelineConfig,
): Promise<string[]> {
  if (!(await hasStateColumns(db, pipeline))) return [];
  const built: string[] = [];
  const schema = quoteIdent(pipeline.table.schema);
  // One connection, outside any transaction: CREATE INDEX CONCURRENTLY refuses to run in one.
  await db.connection().execute(async (conn) => {
    const existing = await readIndexes(conn, pipeline);
    const wanted = Object.values(pipelineIndexes(pipeline)).filter(
      (index): index is PipelineIndex => index !== undefined,
    );
    for (const index of wanted) {
      const found = existing.find((e) => e.name === index.name);
      if (isBuilt(index, found)) continue;
      // Another migrator's build in progress: it finishes it (or, cut short, the next migrate).
      if (found?.building) continue;
      const qualified = `${schema}.${quoteIdent(index.name)}`;
      try {
        if (found) await sql.raw(`drop index concurrently if exists ${qualified}`).execute(conn);
        await sql
          .raw(index.create.replace(/^create index /, "create index concurrently "))
          .execute(conn);
      } catch (error) {
        const code = pgErrorCode(error);
        // A column this version's index needs is added by the install transaction itself.
        if (code === PG.UNDEFINED_COLUMN) continue;
        // Another migrator created the name at the same instant: its build it is.
        if (code === PG.DUPLICATE_TABLE || code === PG.UNIQUE_VIOLATION) continue;
        throw new Error(
          `building index ${pipeline.table.schema}.${index.name} of pipeline ${pipeline.name} concurrently failed; run gleaner migrate again (an unfinished build is dropped and built again)`,
          { cause: error },
        );
      }
      if (index.comment !== undefined)
        await sql
          .raw(`comment on index ${qualified} is ${quoteLiteral(index.comment)}`)
          .execute(conn);
      built.push(index.name);
    }
  });
  return built;
}

/** Whether an existing index is the one wanted: valid, and built for the same settings. */
function isBuilt(wanted: PipelineIndex, existing: ExistingIndex | undefined): boolean {
  return (
    existing !== undefined &&
    existing.valid &&
    (wanted.comment === undefined || existing.comment === wanted.comment)
  );
}

/** The indexes of the pipeline's table when it is a plain table (none otherwise). */
async function readIndexes(
  db: Kysely<GleanerDatabase>,
  pipeline: PipelineConfig,
): Promise<ExistingIndex[]> {
  const result = await sql<ExistingIndex>`
    select ic.relname as name, i.indisvalid as valid,
           exists (select from pg_stat_progress_create_index b where b.index_relid = ic.oid)
             as building,
           obj_description(ic.oid, 'pg_class') as comment
    from pg_class t
    join pg_namespace n on n.oid = t.relnamespace
    join pg_index i on i.indrelid = t.oid
    join pg_class ic on ic.oid = i.indexrelid
    where n.nspname = ${pipeline.table.schema} and t.relname = ${pipeline.table.name}
      and t.relkind = 'r'`.execute(db);
  return result.rows;
}

/** Whether the table exists as a plain table with every state column (an upgrade, not an install). */
async function hasStateColumns(
  db: Kysely<GleanerDatabase>,
  pipeline: PipelineConfig,
): Promise<boolean> {
  const columns = Object.values(stateColumns(pipeline));
  const result = await sql<{ n: number }>`
    select count(*)::int as n
    from pg_attribute a
    join pg_class t on t.oid = a.attrelid
    join pg_namespace n on n.oid = t.relnamespace
    where n.nspname = ${pipeline.table.schema} and t.relname = ${pipeline.table.name}
      and t.relkind = 'r' and a.attnum > 0 and not a.attisdropped
      and a.attname = any(${columns}::text[])`.execute(db);
  return (result.rows[0]?.n ?? 0) === columns.length;
}
