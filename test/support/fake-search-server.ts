// Serper, Brave, Tavily and SearXNG on 127.0.0.1 for tests, one path prefix each
// (`baseUrl("brave")` → http://127.0.0.1:PORT/brave): real HTTP, so the providers' fetch,
// timeout, header and error handling are exercised. Answers are derived from the query.
import { createServer, type IncomingHttpHeaders, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export type FakeSearchApi = "serper" | "brave" | "tavily" | "searxng";

export type FakeSearchBehaviour =
  /** Canned results for the query, after an optional delay. */
  | { kind: "ok"; delayMs?: number }
  /** 200 with this body verbatim (odd shapes, missing fields). */
  | { kind: "body"; body: unknown }
  | { kind: "rate_limited"; retryAfter: string }
  | { kind: "server_error" }
  /** 401 whose message echoes the key received, as some APIs do. */
  | { kind: "unauthorized" }
  /** Never answers; close() drops the connection. */
  | { kind: "hang" }
  /** 200, content-type JSON, body cut mid-object. */
  | { kind: "broken_json" }
  /** 302 to this location (a provider must not follow it with the key). */
  | { kind: "redirect"; location: string };

export interface FakeSearchRequest {
  api: FakeSearchApi | undefined;
  method: string;
  /** Path and query string, as received. */
  path: string;
  headers: IncomingHttpHeaders;
  /** Parsed JSON body (undefined for GET). */
  body: unknown;
  /** The search query, wherever this API puts it. */
  query: string | undefined;
}

export interface FakeSearchServer {
  /** http://127.0.0.1:PORT */
  readonly url: string;
  /** The base_url to configure a provider with. */
  baseUrl(api: FakeSearchApi): string;
  /** Every request received, in order. */
  readonly requests: FakeSearchRequest[];
  /** How to answer from now on (default: ok). */
  behave(behaviour: FakeSearchBehaviour): void;
  close(): Promise<void>;
}

/** The canned results for a query: `count` of them, titles and URLs derived from the query. */
export function cannedResults(
  api: FakeSearchApi,
  query: string,
  count: number,
): { title: string; url: string; snippet: string }[] {
  const slug = query
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-|-$/g, "");
  return Array.from({ length: count }, (_, i) => ({
    title: `${query} result ${i + 1}`,
    // .example is reserved (RFC 2606): these URLs are data, never fetched.
    url: `https://${api}.example/${slug}/${i + 1}`,
    snippet: `About ${query}: snippet ${i + 1} from ${api}.`,
  }));
}

// Real APIs return up to what was asked; SearXNG has no count, its pages hold about ten.
const SEARXNG_PAGE = 10;

function requiredHeader(api: FakeSearchApi): string | undefined {
  if (api === "serper") return "x-api-key";
  if (api === "brave") return "x-subscription-token";
  if (api === "tavily") return "authorization";
  return undefined;
}

function answer(api: FakeSearchApi, query: string, url: URL, body: Record<string, unknown>) {
  switch (api) {
    case "serper": {
      const items = cannedResults(api, query, Number(body["num"] ?? 10));
      return {
        searchParameters: { q: query, num: body["num"], type: "search", engine: "google" },
        organic: items.map((r, i) => ({
          title: r.title,
          link: r.url,
          snippet: r.snippet,
          position: i + 1,
        })),
      };
    }
    case "brave": {
      const items = cannedResults(api, query, Number(url.searchParams.get("count") ?? 20));
      return {
        type: "search",
        query: { original: query },
        web: {
          type: "search",
          // Brave marks matches with <strong> and escapes entities in descriptions.
          results: items.map((r) => ({
            title: r.title,
            url: r.url,
            description: r.snippet.replace(query, `<strong>${query}</strong>`) + " Q&amp;A",
          })),
        },
      };
    }
    case "tavily": {
      const items = cannedResults(api, query, Number(body["max_results"] ?? 5));
      return {
        query,
        results: items.map((r, i) => ({
          title: r.title,
          url: r.url,
          content: r.snippet,
          score: 1 - i / 100,
        })),
        response_time: 0.01,
      };
    }
    case "searxng": {
      const items = cannedResults(api, query, SEARXNG_PAGE);
      return {
        query,
        number_of_results: items.length,
        results: items.map((r) => ({
          title: r.title,
          url: r.url,
          content: r.snippet,
          engine: "fake",
        })),
      };
    }
  }
}

function send(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
) {
  res.writeHead(status, { "content-type": "application/json", ...headers });
  res.end(typeof body === "string" ? body : JSON.stringify(body));
}

const ROUTES: Record<FakeSearchApi, { method: string; path: string }> = {
  serper: { method: "POST", path: "/serper/search" },
  brave: { method: "GET", path: "/brave/res/v1/web/search" },
  tavily: { method: "POST", path: "/tavily/search" },
  searxng: { method: "GET", path: "/searxng/search" },
};

export async function startFakeSearchServer(): Promise<FakeSearchServer> {
  let behaviour: FakeSearchBehaviour = { kind: "ok" };
  const requests: FakeSearchRequest[] = [];
  const timers = new Set<NodeJS.Timeout>();

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const url = new URL(req.url ?? "/", "http://127.0.0.1");
      const raw = Buffer.concat(chunks).toString("utf8");
      let body: unknown;
      try {
        body = raw ? (JSON.parse(raw) as unknown) : undefined;
      } catch (error) {
        send(res, 400, { message: `body is not JSON: ${(error as Error).message}` });
        return;
      }
      const fields = (typeof body === "object" && body !== null ? body : {}) as Record<
        string,
        unknown
      >;
      const api = (Object.keys(ROUTES) as FakeSearchApi[]).find(
        (a) => ROUTES[a].path === url.pathname && ROUTES[a].method === req.method,
      );
      const queryField =
        api === "serper"
          ? fields["q"]
          : api === "tavily"
            ? fields["query"]
            : url.searchParams.get("q");
      const query = typeof queryField === "string" ? queryField : undefined;
      requests.push({
        api,
        method: req.method ?? "",
        path: req.url ?? "",
        headers: req.headers,
        body,
        query,
      });

      if (!api) return send(res, 404, { message: `no fake API at ${req.method} ${url.pathname}` });
      const header = requiredHeader(api);
      if (header && !req.headers[header]) return send(res, 401, { message: `missing ${header}` });
      if (api === "searxng" && url.searchParams.get("format") !== "json") {
        // What a real instance answers when the format is not enabled or not asked for.
        return send(res, 403, "Forbidden");
      }
      if (!query) return send(res, 400, { message: "missing query" });

      const current = behaviour;
      switch (current.kind) {
        case "hang":
          return;
        case "rate_limited":
          return send(res, 429, { message: "rate limited" }, { "retry-after": current.retryAfter });
        case "server_error":
          return send(res, 500, { message: "internal error" });
        case "unauthorized": {
          const got = header
            ? String(req.headers[header])
            : String(req.headers.authorization ?? "");
          return send(res, 401, { message: `Invalid API key: ${got}` });
        }
        case "broken_json":
          return send(res, 200, '{"organic": [{"title": "cut he');
        case "body":
          return send(res, 200, current.body);
        case "redirect":
          return send(res, 302, "", { location: current.location });
        case "ok": {
          const reply = () => send(res, 200, answer(api, query, url, fields));
          if (!current.delayMs) return reply();
          const timer = setTimeout(() => {
            timers.delete(timer);
            reply();
          }, current.delayMs);
          timers.add(timer);
          return;
        }
      }
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    baseUrl: (api) => `${url}/${api}`,
    requests,
    behave(next) {
      behaviour = next;
    },
    async close() {
      for (const timer of timers) clearTimeout(timer);
      server.closeAllConnections();
      await new Promise<void>((resolve, reject) =>
        server.close((e) => (e ? reject(e) : resolve())),
      );
    },
  };
}
