import type { Logger } from "pino";
import type { GleanerConfig } from "../config/config-types.ts";

/** Says which optional LLM backends are off and why, once per command (on stderr, as all logs). */
export function noteBackendsOff(config: GleanerConfig, logger: Logger): void {
  for (const off of config.backendsOff)
    logger.info(`${off.reason}: the stages that name it run without it`);
}
