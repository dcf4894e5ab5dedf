/** Exit codes of every command: 0 ok, 1 failure, 2 bad usage or config. */
export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

/** Bad usage (a filter out of range, an unknown pipeline): exit 2 with the message. */
export class UsageError extends Error {
  override name = "UsageError";
}
