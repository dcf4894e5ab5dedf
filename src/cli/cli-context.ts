import { existsSync } from "node:fs";
import { resolve } from "node:path";
import type { Logger } from "pino";
import { openGleaner, type Gleaner } from "../app/open-gleaner.ts";
import { ConfigError } from "../config/config-error.ts";
import type { GleanerConfig } from "../config/config-types.ts";
import { loadConfigFile } from "../config/load-config.ts";
import { createLogger } from "../log/create-logger.ts";

/** Exit codes: 0 ok, 1 failure, 2 bad usage or config. */
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

export class UsageError extends Error {
  override name = "UsageError";
}

export function loadCliConfig(file: string): GleanerConfig {
  const path = resolve(file);
  if (!existsSync(path)) {
    throw new ConfigError(
      "",
      `no config file at ${path}. Pass --config FILE, or copy gleaner.yaml from the Gleaner repository as a start`,
    );
  }
  return loadConfigFile(path);
}

export async function openFromCli(
  options: { config: string },
  extra: { migrate?: boolean; logger?: Logger } = {},
): Promise<Gleaner> {
  const config = loadCliConfig(options.config);
  const logger = extra.logger ?? createLogger({ secrets: config.secrets });
  return openGleaner(config, { logger, migrate: extra.migrate ?? false });
}

/** Resolves when SIGINT or SIGTERM arrives; a second signal exits at once. */
export function untilSignal(logger: Logger): Promise<string> {
  return new Promise((resolvePromise) => {
    const onSignal = (signal: string) => {
      logger.info(`${signal} received: finishing current stages and handing rows back`);
      process.once("SIGINT", () => process.exit(130));
      process.once("SIGTERM", () => process.exit(143));
      resolvePromise(signal);
    };
    process.once("SIGINT", () => onSignal("SIGINT"));
    process.once("SIGTERM", () => onSignal("SIGTERM"));
  });
}
