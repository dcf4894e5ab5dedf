/**
 * Turns whatever a `catch` caught into an Error, so catch sites read `.message` and `.cause`
 * without a cast. A thrown string or object keeps its text; an Error passes through unchanged.
 */
export function coerceError(value: unknown): Error {
  if (value instanceof Error) return value;
  if (typeof value === "string") return new Error(value);
  if (value !== null && typeof value === "object" && "message" in value) {
    const message = value.message;
    if (typeof message === "string") return Object.assign(new Error(message), value);
  }
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    // A cyclic or exotic object: its default string form is the best there is.
    text = String(value);
  }
  return new Error(`non-error thrown: ${text}`);
}
