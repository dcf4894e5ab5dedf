import type { Logger } from "pino";
import { openGleaner, type Gleaner } from "../app/open-gleaner.ts";
import type { PipelineRuntime } from "../pipeline/runtime.ts";
import { UsageError } from "./exit-codes.ts";
import { connectionBudget } from "../db/connection-budget.ts";
import { createLogger } from "../log/create-logger.ts";
import { loadCliConfig } from "./load-cli-config.ts";

export async function openFromCli(
  options: { config: string; concurrency?: string },
  extra: { migrate?: boolean; logger?: Logger } = {},
): Promise<Gleaner> {
  const config = loadCliConfig(options.config);
  const logger = extra.logger ?? createLogger({ secrets: config.secrets });
  // --concurrency sizes the pool as worker.concurrency would (src/db/connection-budget.ts).
  const concurrency = options.concurrency ? Number(options.concurrency) : undefined;
  return openGleaner(config, {
    logger,
    migrate: extra.migrate ?? false,
    ...(concurrency ? { poolSize: connectionBudget(concurrency).main } : {}),
  });
}

const STOP_SIGNALS = ["SIGINT", "SIGTERM", "SIGHUP"] as const;
const EXIT_CODES: Record<(typeof STOP_SIGNALS)[number], number> = {
  SIGHUP: 129,
  SIGINT: 130,
  SIGTERM: 143,
};

export interface StopSignals {
  /** Resolves with the first SIGINT (Ctrl-C), SIGTERM or SIGHUP (the terminal closed). */
  readonly received: Promise<string>;
  /**
   * What to log to, and what to do on a second signal (stop at once: the embedded database
   * must not outlive Gleaner). Until then, a signal is noted on stderr.
   */
  attach(logger: Logger, hurry: () => Promise<void>): void;
}

/**
 * Watches the stop signals from the moment a long command starts, before it connects: a
 * signal during start-up is not the default "die at once" (no rows handed back, the embedded
 * database left running) but a stop as soon as start-up is done. A second signal stops at once.
 */
export function watchStopSignals(): StopSignals {
  let logger: Logger | undefined;
  let hurry: (() => Promise<void>) | undefined;
  const say = (level: "info" | "warn", message: string) =>
    logger ? logger[level](message) : process.stderr.write(`gleaner: ${message}\n`);
  const received = new Promise<string>((resolvePromise) => {
    const onSecond = (signal: (typeof STOP_SIGNALS)[number]) => {
      say("warn", `${signal} again: stopping now, without waiting for running stages`);
      const exit = () => process.exit(EXIT_CODES[signal]);
      // Bounded: a hung stop must not keep the process from exiting.
      setTimeout(exit, 10_000).unref();
      void (hurry?.() ?? Promise.resolve()).finally(exit);
    };
    const first = new Map(STOP_SIGNALS.map((s) => [s, () => onSignal(s)]));
    const onSignal = (signal: (typeof STOP_SIGNALS)[number]) => {
      for (const [s, listener] of first) process.off(s, listener);
      say("info", `${signal} received: finishing current stages and handing rows back`);
      for (const s of STOP_SIGNALS) process.once(s, () => onSecond(s));
      resolvePromise(signal);
    };
    for (const [s, listener] of first) process.once(s, listener);
  });
  return {
    received,
    attach(l, h) {
      logger = l;
      hurry = h;
    },
  };
}

/** The pipeline a command names, or a usage error listing the ones the config has. */
export function cliPipeline(app: Gleaner, name: string, configFile: string): PipelineRuntime {
  const entry = app.runtime.pipelines.get(name);
  if (!entry)
    throw new UsageError(
      `no pipeline "${name}" in ${configFile} (pipelines: ${[...app.runtime.pipelines.keys()].join(", ")})`,
    );
  return entry;
}
