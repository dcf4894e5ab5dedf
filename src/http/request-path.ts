/** A request target split into its path and query, or why it is refused. */
export type RequestPath =
  { ok: true; path: string; query: URLSearchParams } | { ok: false; reason: string };

/**
 * Checks the path of a request target before anything routes on it. Every route and the corpus
 * folder compare the raw path, while WHATWG URL parsing (used to read the query and parameters)
 * folds `..`, `%2e%2e` and `\` away; a path on which the two could disagree is refused, so
 * what is routed is what is served. Refused: a target that is not a path (absolute-form, `*`),
 * `\`, malformed percent-encoding, and segments that decode to `.` or `..`, or hide a `/` or a
 * NUL. No Gleaner URL needs any of them.
 */
export function checkRequestPath(target: string): RequestPath {
  const queryAt = target.indexOf("?");
  const path = queryAt === -1 ? target : target.slice(0, queryAt);
  const query = new URLSearchParams(queryAt === -1 ? "" : target.slice(queryAt + 1));
  if (!path.startsWith("/"))
    return { ok: false, reason: "the request target must be a path starting with /" };
  if (path.includes("\\")) return { ok: false, reason: 'the path must not contain "\\"' };
  for (const segment of path.split("/")) {
    let decoded: string;
    try {
      decoded = decodeURIComponent(segment);
    } catch {
      return {
        ok: false,
        reason: `the path segment "${segment}" has malformed percent-encoding`,
      };
    }
    if (decoded === "." || decoded === "..")
      return { ok: false, reason: `the path must not contain a "${decoded}" segment` };
    if (decoded.includes("/"))
      return { ok: false, reason: `the path segment "${segment}" holds an encoded "/"` };
    if (decoded.includes("\0"))
      return { ok: false, reason: `the path segment "${segment}" holds a NUL character` };
  }
  return { ok: true, path, query };
}
