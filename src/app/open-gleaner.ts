import { existsSync } from "node:fs";
import type { Logger } from "pino";
import { createConfiguredConcurrency } from "../concurrency/configured-concurrency.ts";
import type { GleanerConfig } from "../config/config-types.ts";
import type { Clock } from "../core/clock.ts";
import { connectDatabase, type Database } from "../db/connect-database.ts";
import { migrate, type MigrateReport } from "../db/migrate.ts";
import { createLogger } from "../log/create-logger.ts";
import { noteBackendsOff } from "./note-backends-off.ts";
import { ownCorpusPrefixes } from "../search/corpus-folders.ts";
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
  options: {
    env?: NodeJS.ProcessEnv;
    logger?: Logger;
    migrate?: boolean;
    poolSize?: number;
    /** The budget windows' clock (tests). */
    clock?: Clock;
  } = {},
): Promise<Gleaner> {
  const logger = options.logger ?? createLogger({ secrets: config.secrets });
  const database = await connectDatabase(config, {
    ...(options.env ? { env: options.env } : {}),
    ...(options.poolSize ? { poolSize: options.poolSize } : {}),
    log: (line) => logger.warn(line),
  });
  const concurrency = createConfiguredConcurrency(config, database.db, (line) => logger.warn(line));
  try {
    const migration = options.migrate ? await migrate(database, config) : undefined;
    const runtime = await createRuntime(config, database.db, {
      concurrency,
      ownPrefixes: ownCorpusPrefixes(config),
      ...(options.clock ? { clock: options.clock } : {}),
    });
    runtime.events.on("research:warning", ({ message }) => logger.warn(message));
    noteBackendsOff(config, logger);
    const renders = config.pipelines.some((p) =>
      p.stages.some((s) => s.kind === "crawl" && s.javascript !== "never"),
    );
    // A remote browser (crawl.browser.endpoint) needs no Chromium here.
    if (
      renders &&
      !config.crawl.browser.endpoint &&
      !existsSync(config.crawl.browser.executablePath)
    )
      logger.warn(
        `no browser at ${config.crawl.browser.executablePath} (crawl.browser.executable_path): pages that need JavaScript will fail; install Chromium (apt-get install chromium) or set crawl.javascript: never`,
      );
    // Before any call: a process joining a busy fleet starts at its share of what the fleet
    // has learnt, not at max_concurrency. A failure is not fatal; the loop keeps trying.
    await concurrency
      .sync()
      .catch((error: Error) =>
        logger.warn(`concurrency limits: first sync failed: ${error.message}`),
      );
    concurrency.start();
    const close = async (): Promise<void> => {
      await runtime.research.close();
      await concurrency.stop();
      await database.close();
    };
    return { config, database, runtime, logger, migration, close };
  } catch (error) {
    await concurrency.stop();
    await database.close();
    throw error;
  }
}
