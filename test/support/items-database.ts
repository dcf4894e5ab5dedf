import { afterAll, beforeAll } from "vitest";
import type { GleanerConfig } from "../../src/config/config-types.ts";
import { connectDatabase, type Database } from "../../src/db/connect-database.ts";
import { migrate } from "../../src/db/migrate.ts";
import { itemsPipelineConfig } from "./items-pipeline-config.ts";
import { createTestDatabase, type TestDatabase } from "./test-database.ts";

/** A test file's own database with the `items` pipeline installed (see useItemsDatabase). */
export interface ItemsDatabase {
  /** Its connection URL. */
  readonly url: string;
  readonly database: Database;
  /** The items pipeline's config on this database (itemsPipelineConfig's `extra` and `table`). */
  readonly config: (extra?: string, table?: string) => GleanerConfig;
  readonly q: <T = Record<string, unknown>>(text: string, params?: unknown[]) => Promise<T[]>;
}

/**
 * For the install and upgrade tests: before the file's tests, a database of their own, the
 * items pipeline migrated on it (`extra` pipeline keys, as itemsPipelineConfig takes them) and
 * `rows` rows inserted; after them, the connections closed and the database dropped.
 */
export function useItemsDatabase(
  label: string,
  setup: { rows: number; extra?: string },
): ItemsDatabase {
  let testDb: TestDatabase | undefined;
  let database: Database | undefined;
  const opened = <T>(value: T | undefined): T => {
    if (value === undefined) throw new Error("the items database is opened in beforeAll");
    return value;
  };
  const items: ItemsDatabase = {
    get url() {
      return opened(testDb).url;
    },
    get database() {
      return opened(database);
    },
    config: (extra = "", table?: string) => itemsPipelineConfig(items.url, extra, table),
    q: async <T>(text: string, params: unknown[] = []) =>
      (await items.database.pool.query(text, params)).rows as T[],
  };
  beforeAll(async () => {
    testDb = await createTestDatabase(label);
    database = await connectDatabase(items.config(), {
      env: { DATABASE_URL: testDb.url },
      poolSize: 4,
    });
    await migrate(database, items.config(setup.extra));
    await items.q(`insert into items (name) select 'n' || i from generate_series(1, $1) i`, [
      setup.rows,
    ]);
  });
  afterAll(async () => {
    await database?.close();
    await testDb?.drop();
  });
  return items;
}
