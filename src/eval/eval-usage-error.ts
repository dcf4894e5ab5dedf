/** An eval that cannot run as asked (no golden set, a column missing): exit 2 with the message. */
export class EvalUsageError extends Error {
  override name = "EvalUsageError";
}
