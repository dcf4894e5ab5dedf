/**
 * A backend's `base_url` with its query string moved out. The openai client appends the path to
 * `base_url` as text, so `https://h/v1?key=K` would call `https://h/v1?key=K/chat/completions`,
 * a garbled request that carries the key. The parameters join `query` instead, which the client
 * adds to every request (an entry written under `query` wins), and the `base_url` Gleaner shows
 * in logs, `gleaner doctor` and errors carries no key.
 */
export function splitBaseUrl(
  baseUrl: string,
  query: Readonly<Record<string, string>> | undefined,
): { baseUrl: string; query: Record<string, string> | undefined } {
  const url = new URL(baseUrl);
  if (url.search === "" && url.hash === "")
    return { baseUrl: baseUrl.replace(/\/+$/, ""), query: query ? { ...query } : undefined };
  const fromUrl = Object.fromEntries(url.searchParams);
  url.search = "";
  url.hash = "";
  const merged = { ...fromUrl, ...query };
  return {
    baseUrl: url.href.replace(/\/+$/, ""),
    query: Object.keys(merged).length > 0 ? merged : undefined,
  };
}
