import type { Logger } from "pino";
import type { GleanerConfig } from "../config/config-types.ts";
import { connectDatabase, type Database } from "../db/connect-database.ts";
import { migrate, type MigrateReport } from "../db/migrate.ts";
import { createLogger } from "../log/create-logger.ts";
import { createRuntime, type Runtime } from "../pipeline/runtime.ts";

export interface Gleaner {
  config: GleanerConfig;
  database: Database;
  runtime: Runtime;
  logger: Logger;
  migration: MigrateReport | undefined;
  close(): Promise<void>;
}

/** Connects, optionally migrates, and builds the runtime: what every long command starts with. */
export async function openGleaner(
  config: GleanerConfig,
  options: { env?: NodeJS.ProcessEnv; logger?: Logger; migrate?: boolean; poolSize?: number } = {},
): Promise<Gleaner> {
  const logger = options.logger ?? createLogger({ secrets: config.secrets });
  const database = await connectDatabase(config, {
    ...(options.env ? { env: options.env } : {}),
    ...(options.poolSize ? { poolSize: options.poolSize } : {}),
    log: (line) => logger.warn(line),
  });
  try {
    const migration = options.migrate ? await migrate(database, config) : undefined;
    const runtime = await createRuntime(config, database.db);
    return { config, database, runtime, logger, migration, close: () => database.close() };
  } catch (error) {
    await database.close();
    throw error;
  }
}
