import { pino, type DestinationStream } from "pino";
import pinoPretty from "pino-pretty";

/** Errors of a terminal or pipe that went away: nothing is left to tell, and nobody to tell it. */
const GONE = new Set(["EPIPE", "EIO", "ECONNRESET", "ERR_STREAM_DESTROYED"]);

function isGone(error: unknown): boolean {
  return (
    typeof error === "object" &&
    error !== null &&
    "code" in error &&
    typeof error.code === "string" &&
    GONE.has(error.code)
  );
}

let guarded = false;

/**
 * Keeps a closed terminal or a reader that left the pipe (`gleaner status | head -1`, an ssh
 * session dropped) from ending the process through an `error` event on stdout or stderr: the
 * rows in flight matter more than lines no one can read. Other stream errors still surface.
 * Installed by the command line only, so importing Gleaner as a library changes nothing.
 */
export function guardStandardStreams(): void {
  if (guarded) return;
  guarded = true;
  for (const stream of [process.stdout, process.stderr]) {
    stream.on("error", (error) => {
      if (!isGone(error)) throw error;
    });
  }
}

/**
 * Where Gleaner's log lines go: always stderr, so stdout carries only a command's result
 * (`gleaner status --json | jq`). Readable lines when stderr is a terminal (formatted in this
 * thread: a transport's worker thread would cost start-up time and could drop the last lines on
 * exit), JSON lines otherwise or with GLEANER_LOG_JSON=1. Writes are synchronous so a line
 * logged just before an exit is not lost.
 */
export function logDestination(env: NodeJS.ProcessEnv = process.env): DestinationStream {
  const pretty = process.stderr.isTTY === true && !env.GLEANER_LOG_JSON;
  const stream = pretty
    ? pinoPretty({
        destination: 2,
        sync: true,
        translateTime: "HH:MM:ss.l",
        ignore: "pid,hostname",
      })
    : pino.destination({ fd: 2, sync: true });
  stream.on("error", (error: unknown) => {
    if (!isGone(error)) throw error;
  });
  return stream;
}
