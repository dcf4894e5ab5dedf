import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { ConfigError } from "../config/config-error.ts";
import type { GleanerConfig } from "../config/config-types.ts";
import { loadConfigFile } from "../config/load-config.ts";

/** The --config file, parsed and frozen; a missing file says where it looked and what to do. */
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
