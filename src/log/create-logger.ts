import { pino, type Logger } from "pino";
import { maskSecrets } from "../core/mask-secrets.ts";
import { logDestination } from "./log-destination.ts";

/**
 * One pino logger per process, writing to stderr (`logDestination`). Every message passes
 * through maskSecrets, because driver and HTTP errors like to echo connection strings and keys.
 */
export function createLogger(options: { secrets: readonly string[]; level?: string }): Logger {
  const secrets = options.secrets;
  return pino(
    {
      level: options.level ?? process.env.GLEANER_LOG_LEVEL ?? "info",
      base: undefined,
      hooks: {
        logMethod(args, method) {
          const masked = args.map((a) =>
            typeof a === "string" ? maskSecrets(a, secrets) : a,
          ) as Parameters<typeof method>;
          return method.apply(this, masked);
        },
      },
    },
    logDestination(),
  );
}
