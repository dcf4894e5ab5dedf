import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Logger, runMigrations } from "graphile-worker";
import { sql } from "kysely";
import { PG, pgErrorCode } from "../core/pg-error-codes.ts";
import type { GleanerConfig } from "../config/config-types.ts";
import type { Database } from "./connect-database.ts";
import { loadAdhocPipelines } from "../pipeline/adhoc-pipelines.ts";
import { indexCorpusFolder } from "../search/index-corpus-folder.ts";
import { servedCorpora } from "../search/corpus-folders.ts";
import { forgetProviderAnswers } from "../search/search-cache.ts";
import { seedTable } from "./seed-table.ts";
import { addStateColumnsOnline } from "./add-state-columns-online.ts";
import { buildIndexesConcurrently } from "./build-indexes-concurrently.ts";
import { installPipelineTable } from "./install-pipeline-table.ts";
import { quoteIdent } from "./quote-identifier.ts";
import {
  DEFAULT_TABLE_LOCK_PATIENCE,
  limitLockWait,
  withTableLockPatience,
  type TableLockPatience,
} from "./table-lock-patience.ts";

const MIGRATIONS_DIR = fileURLToPath(new URL("../../migrations/", import.meta.url));

interface Migration {
  id: number;
  name: string;
  text: string;
}

function readMigrations(): Migration[] {
  return readdirSync(MIGRATIONS_DIR)
    .filter((f) => /^\d{6}_[a-z0-9_]+\.sql$/.test(f))
    .sort()
    .map((f) => ({
      id: Number(f.slice(0, 6)),
      name: f,
      text: readFileSync(MIGRATIONS_DIR + f, "utf8"),
    }));
}

export interface MigrateReport {
  applied: string[];
  pipelines: {
    name: string;
    table: string;
    outcome: "created" | "updated" | "unchanged";
    /** Rows loaded from the pipeline's seed CSV (only when the table was created). */
    seeded?: number;
  }[];
  corpora: { provider: string; documents: number; changed: number }[];
}

/**
 * Brings the database up to date: Gleaner's schema (forward-only numbered files), then
 * graphile-worker's, then each pipeline's table. Safe to run from several processes at once.
 */
export async function migrate(
  database: Database,
  config: GleanerConfig,
  options: { lockPatience?: TableLockPatience } = {},
): Promise<MigrateReport> {
  const patience = options.lockPatience ?? DEFAULT_TABLE_LOCK_PATIENCE;
  const applied = await migrateGleanerSchema(database, config.schema);
  await runMigrations({ pgPool: database.pool, schema: config.workerSchema, logger: silentLogger });
  const pipelines: MigrateReport["pipelines"] = [];
  // Ad-hoc pipelines (created through the API) get the same upgrades as configured ones.
  const adhoc = await loadAdhocPipelines(database.db, config);
  for (const pipeline of [...config.pipelines, ...adhoc]) {
    // An existing table's state columns, then its new indexes, each without holding the table:
    // readers and writers do not wait for a scan or a build.
    await addStateColumnsOnline(database.db, pipeline, patience);
    await buildIndexesConcurrently(database.db, pipeline);
    const table = `${pipeline.table.schema}.${pipeline.table.name}`;
    const outcome = await withTableLockPatience(table, patience, () =>
      database.db.transaction().execute(async (trx) => {
        // One installer per pipeline at a time; the DDL itself also locks the table.
        await sql`select pg_advisory_xact_lock(hashtext(${"gleaner:install:" + pipeline.name}))`.execute(
          trx,
        );
        await limitLockWait(trx, patience);
        const installed = await installPipelineTable(trx, pipeline, config.schema);
        const seeded = installed === "created" ? await seedTable(trx, pipeline) : 0;
        return { installed, seeded };
      }),
    );
    pipelines.push({
      name: pipeline.name,
      table: `${pipeline.table.schema}.${pipeline.table.name}`,
      outcome: outcome.installed,
      ...(outcome.seeded > 0 ? { seeded: outcome.seeded } : {}),
    });
  }
  // Corpus folders of `local` search providers: re-indexed at every migrate (unchanged files
  // cost a read, no write), under the URL Gleaner serves them at.
  const corpora: MigrateReport["corpora"] = [];
  for (const corpus of servedCorpora(config)) {
    const report = await indexCorpusFolder(
      database.db,
      config.schema,
      corpus.corpus,
      corpus.folder,
      corpus.baseUrl,
    );
    // Answers cached before the corpus changed may name documents that changed or went away.
    if (report.inserted + report.updated + report.removed > 0)
      await forgetProviderAnswers(database.db, config.schema, corpus.provider);
    corpora.push({
      provider: corpus.provider,
      documents: report.files,
      changed: report.inserted + report.updated + report.removed,
    });
  }
  return { applied, pipelines, corpora };
}

async function migrateGleanerSchema(database: Database, schema: string): Promise<string[]> {
  const migrations = readMigrations();
  const s = quoteIdent(schema);
  await sql
    .raw(
      `create schema if not exists ${s};
       create table if not exists ${s}.migrations (
         id integer primary key, name text not null, applied_at timestamptz not null default now())`,
    )
    .execute(database.db)
    .catch((error: unknown) => {
      // Two processes creating the schema at the same instant: one wins, the other sees a
      // unique violation (or the table already there).
      const code = pgErrorCode(error);
      if (code !== PG.UNIQUE_VIOLATION && code !== PG.DUPLICATE_TABLE) throw error;
    });
  const applied: string[] = [];
  for (const migration of migrations) {
    const done = await database.db.transaction().execute(async (trx) => {
      const newest = await trx
        .withSchema(schema)
        .selectFrom("migrations")
        .select((eb) => eb.fn.max("id").as("id"))
        .executeTakeFirst();
      const latestKnown = migrations[migrations.length - 1]?.id ?? 0;
      if ((newest?.id ?? 0) > latestKnown)
        throw new Error(
          `the database has Gleaner migration ${newest?.id} but this Gleaner knows only up to ${latestKnown}: upgrade Gleaner before running it against this database`,
        );
      // Recording the migration first means a second migrator blocks on the primary key and then
      // skips, instead of applying the same file twice.
      const inserted = await trx
        .withSchema(schema)
        .insertInto("migrations")
        .values({ id: migration.id, name: migration.name })
        .onConflict((oc) => oc.column("id").doNothing())
        .returning("id")
        .executeTakeFirst();
      if (!inserted) return false;
      await sql.raw(migration.text.replaceAll(":GLEANER_SCHEMA", s)).execute(trx);
      return true;
    });
    if (done) applied.push(migration.name);
  }
  return applied;
}

export async function pendingMigrations(database: Database, schema: string): Promise<string[]> {
  const migrations = readMigrations();
  const rows = await sql<{ id: number }>`
    select id from ${sql.id(schema, "migrations")}`
    .execute(database.db)
    .then((r) => r.rows)
    .catch((error: unknown) => {
      // No migrations table or no schema: never migrated.
      const code = pgErrorCode(error);
      if (code === PG.UNDEFINED_TABLE || code === PG.INVALID_SCHEMA_NAME) return [];
      throw error;
    });
  const have = new Set(rows.map((r) => r.id));
  return migrations.filter((m) => !have.has(m.id)).map((m) => m.name);
}

// graphile-worker logs each migration it runs; `gleaner migrate` prints its own summary instead.
const silentLogger = new Logger(() => () => {});
