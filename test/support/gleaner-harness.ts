import pg from "pg";
import { pino } from "pino";
import { sql } from "kysely";
import { parseConfig } from "../../src/config/load-config.ts";
import { openGleaner, type Gleaner } from "../../src/app/open-gleaner.ts";
import { drain } from "../../src/worker/drain.ts";
import { sweepPipeline } from "../../src/sweep/sweep-pipeline.ts";
import { createTestDatabase, type TestDatabase } from "./test-database.ts";

/** A migrated Gleaner on a database of its own, built from a YAML config text. */
export interface Harness {
  app: Gleaner;
  testDb: TestDatabase;
  /** Runs SQL on the test database. */
  query<T = Record<string, unknown>>(text: string, params?: unknown[]): Promise<T[]>;
  sweep(pipeline?: string): Promise<number>;
  drain(timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export const quietLogger = pino({ level: process.env.GLEANER_TEST_LOG ?? "silent" });

export async function startHarness(
  label: string,
  yaml: string,
  options: { beforeMigrate?: string } = {},
): Promise<Harness> {
  const testDb = await createTestDatabase(label);
  try {
    if (options.beforeMigrate) {
      // SQL of the user's own, run before Gleaner first sees the database (existing tables).
      const client = new pg.Client({ connectionString: testDb.url });
      await client.connect();
      try {
        await client.query(options.beforeMigrate);
      } finally {
        await client.end();
      }
    }
    const config = parseConfig(yaml, { env: { ...process.env, DATABASE_URL: testDb.url } });
    const app = await openGleaner(config, {
      env: { DATABASE_URL: testDb.url },
      logger: quietLogger,
      migrate: true,
    });
    return {
      app,
      testDb,
      async query<T>(text: string, params: unknown[] = []) {
        const result = await app.database.pool.query(text, params);
        return result.rows as T[];
      },
      async sweep(pipeline?: string) {
        let claimed = 0;
        for (const entry of app.runtime.pipelines.values()) {
          if (pipeline && entry.pipeline.name !== pipeline) continue;
          claimed += (await sweepPipeline(app.database.db, config, entry.pipeline)).claimed;
        }
        return claimed;
      },
      async drain(timeoutMs = 30_000) {
        const result = await drain({
          runtime: app.runtime,
          url: testDb.url,
          logger: quietLogger,
          timeoutMs,
        });
        if (result.timedOut) throw new Error(`drain timed out: ${JSON.stringify(result.progress)}`);
      },
      async close() {
        await app.close();
        await testDb.drop();
      },
    };
  } catch (error) {
    await testDb.drop();
    throw error;
  }
}

/** Moves a row's due time into the past, as if its retry delay had passed. */
export async function makeDue(h: Harness, table: string, prefix = "enrichment_"): Promise<void> {
  await sql
    .raw(
      `update ${table} set ${prefix}next_at = now() - interval '1 second' where ${prefix}next_at is not null`,
    )
    .execute(h.app.database.db);
}
