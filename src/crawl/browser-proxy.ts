import {
  Agent as HttpAgent,
  createServer,
  request as httpRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type ServerResponse,
} from "node:http";
import { connect, type AddressInfo, type Socket } from "node:net";
import type { Duplex } from "node:stream";
import { findCrawlError, SsrfRefusedError } from "./crawl-error.ts";
import type { SsrfGuard } from "./ssrf-guard.ts";

/**
 * The browser's only way out: a forward proxy (on 127.0.0.1 unless a remote browser needs another
 * address) that every request of a pooled browser context goes through (each context is created
 * with it as its proxy, loopback included). A remote browser (`crawl.browser.endpoint`) gets its
 * contexts from this process, so their requests come back here too: the guard travels with the
 * connection.
 *
 * This is where the browser path enforces the SSRF guard, and the only place: Chromium resolves
 * no name itself behind a proxy, and follows redirects inside its network stack where no page
 * hook sees them. Here every hop of every request, plain HTTP and CONNECT tunnels alike, is
 * resolved and checked by the guard, and the socket goes to the very address that was checked, as
 * the fetch path's undici connector does. A refused request never leaves the machine: plain HTTP
 * gets a 403 marked `x-gleaner-refused`, a tunnel gets a 403.
 */

export interface ProxyRefusal {
  /** The URL (plain HTTP) or `https://host:port` (a CONNECT tunnel) that was refused. */
  url: string;
  error: SsrfRefusedError;
}

export interface GuardedProxyHooks {
  /** Every request and tunnel asked for, allowed or not, by origin (`https://host` for a tunnel). */
  onRequest?: (origin: string) => void;
  /**
   * Plain HTTP requests for these kinds of resource are answered at once with an empty 204 marked
   * `x-gleaner-refused: blocked`, before the guard or any upstream (tunnels are opaque: Chromium's
   * flags keep images and fonts from being requested at all).
   */
  blockKinds?: ReadonlySet<ResourceKind>;
  /** A request answered that way. */
  onBlocked?: (url: string, kind: ResourceKind) => void;
  /** A request or tunnel the guard refused. */
  onRefused?: (refusal: ProxyRefusal) => void;
  /** Every upstream socket the proxy opens, with the checked address it connects to. */
  onUpstreamConnect?: (address: string, port: number) => void;
  /** Response bytes received from upstream; returning false cuts that response off. */
  onBytes?: (bytes: number) => boolean;
}

export interface GuardedProxyListen {
  /**
   * The address to listen on and that the browser reaches the proxy at. Default 127.0.0.1; a
   * remote browser (`crawl.browser.endpoint`) on another machine needs an address it can reach.
   */
  host?: string;
  /**
   * Basic credentials every request and tunnel must carry (407 otherwise): a proxy a remote
   * browser reaches is reachable by others on that network too, and would let them through to
   * every address crawl.allow trusts.
   */
  credentials?: { username: string; password: string };
}

export interface GuardedProxy {
  /** `http://<host>:<port>`, the `proxyServer` of a browser context. */
  readonly server: string;
  close(): Promise<void>;
}

export const REFUSED_HEADER = "x-gleaner-refused";

// Hop-by-hop headers (RFC 9110 §7.6.1) and the proxy's own: never forwarded either way.
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "proxy-authenticate",
  "proxy-authorization",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
]);

export async function startGuardedProxy(
  guard: Pick<SsrfGuard, "assertUrlAllowed">,
  hooks: GuardedProxyHooks = {},
  listen: GuardedProxyListen = {},
): Promise<GuardedProxy> {
  const host = listen.host ?? "127.0.0.1";
  const expectedAuth = listen.credentials
    ? `Basic ${Buffer.from(`${listen.credentials.username}:${listen.credentials.password}`).toString("base64")}`
    : undefined;
  const authorized = (req: IncomingMessage) =>
    expectedAuth === undefined || req.headers["proxy-authorization"] === expectedAuth;
  const sockets = new Set<Duplex>();
  // Keyed by host:port, and the host is always the checked address: a kept-alive socket is only
  // ever reused for the address it was opened to.
  const agent = new HttpAgent({ keepAlive: true, maxSockets: 32, keepAliveMsecs: 2_000 });

  function track(socket: Duplex): void {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  }

  function refuse(url: string, error: unknown): boolean {
    const refused = findCrawlError(error);
    if (!(refused instanceof SsrfRefusedError)) return false;
    hooks.onRefused?.({ url, error: refused });
    return true;
  }

  function handleRequest(req: IncomingMessage, res: ServerResponse): void {
    if (!authorized(req)) {
      req.resume();
      res.writeHead(407, { "proxy-authenticate": 'Basic realm="gleaner"' }).end();
      return;
    }
    let target: URL;
    try {
      target = new URL(req.url ?? "");
    } catch {
      res.writeHead(400, { "content-type": "text/plain" }).end("absolute URL expected");
      return;
    }
    // https:// and wss:// come as CONNECT tunnels; anything else in absolute form is not crawled.
    if (target.protocol !== "http:") {
      res.writeHead(400, { "content-type": "text/plain" }).end("only http is proxied");
      return;
    }
    hooks.onRequest?.(target.origin);
    const kind = hooks.blockKinds?.size ? resourceKind(target, req.headers) : undefined;
    if (kind && hooks.blockKinds?.has(kind)) {
      hooks.onBlocked?.(target.href, kind);
      req.resume();
      res.writeHead(204, { [REFUSED_HEADER]: "blocked" }).end();
      return;
    }
    guard.assertUrlAllowed(target).then(
      (addresses) => {
        const { address, family } = addresses[0] as { address: string; family: 4 | 6 };
        const port = Number(target.port || 80);
        const headers = forwardHeaders(req.headers);
        headers.host = target.host;
        hooks.onUpstreamConnect?.(address, port);
        const upstream = httpRequest({
          host: address,
          family,
          port,
          method: req.method,
          path: target.pathname + target.search,
          headers,
          setHost: false,
          agent,
        });
        upstream.on("response", (answer) => {
          res.writeHead(
            answer.statusCode ?? 502,
            answer.statusMessage,
            forwardRaw(answer.rawHeaders),
          );
          answer.on("data", (chunk: Buffer) => {
            if (hooks.onBytes && !hooks.onBytes(chunk.length)) {
              answer.destroy();
              res.destroy();
              return;
            }
            if (!res.write(chunk)) {
              answer.pause();
              res.once("drain", () => answer.resume());
            }
          });
          answer.on("end", () => res.end());
          answer.on("error", () => res.destroy());
        });
        upstream.on("error", () => {
          if (!res.headersSent) {
            res.writeHead(502, { "content-type": "text/plain" }).end("upstream failed");
          } else res.destroy();
        });
        res.on("close", () => {
          if (!res.writableFinished) upstream.destroy();
        });
        req.pipe(upstream);
      },
      (error: unknown) => {
        if (refuse(target.href, error)) {
          res
            .writeHead(403, { "content-type": "text/plain", [REFUSED_HEADER]: "ssrf" })
            .end("refused by Gleaner's SSRF guard");
        } else {
          res.writeHead(502, { "content-type": "text/plain" }).end("cannot resolve");
        }
      },
    );
  }

  function handleConnect(req: IncomingMessage, client: Duplex, head: Buffer): void {
    track(client);
    client.on("error", () => client.destroy());
    if (!authorized(req)) {
      client.end(
        'HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="gleaner"\r\n\r\n',
      );
      return;
    }
    const authority = req.url ?? "";
    let target: URL;
    try {
      target = new URL(`https://${authority}/`);
    } catch {
      client.end("HTTP/1.1 400 Bad Request\r\n\r\n");
      return;
    }
    const port = Number(target.port || 443);
    const url = `https://${target.host}`;
    hooks.onRequest?.(target.origin);
    guard.assertUrlAllowed(target).then(
      (addresses) => {
        const { address } = addresses[0] as { address: string };
        if (client.destroyed) return;
        hooks.onUpstreamConnect?.(address, port);
        const upstream: Socket = connect({ host: address, port });
        track(upstream);
        upstream.on("connect", () => {
          client.write("HTTP/1.1 200 Connection Established\r\n\r\n");
          if (head.length > 0) upstream.write(head);
          upstream.on("data", (chunk: Buffer) => {
            if (hooks.onBytes && !hooks.onBytes(chunk.length)) {
              upstream.destroy();
              client.destroy();
              return;
            }
            if (!client.write(chunk)) {
              upstream.pause();
              client.once("drain", () => upstream.resume());
            }
          });
          client.pipe(upstream);
        });
        upstream.on("error", () => {
          if (upstream.connecting) client.end("HTTP/1.1 502 Bad Gateway\r\n\r\n");
          else client.destroy();
        });
        upstream.on("close", () => client.destroy());
        client.on("close", () => upstream.destroy());
      },
      (error: unknown) => {
        const status = refuse(url, error) ? "403 Forbidden" : "502 Bad Gateway";
        client.end(`HTTP/1.1 ${status}\r\n${REFUSED_HEADER}: ssrf\r\n\r\n`);
      },
    );
  }

  const server = createServer({ keepAlive: true }, handleRequest);
  server.on("connection", track);
  server.on("connect", handleConnect);
  // Chromium tunnels WebSockets with CONNECT; an Upgrade in absolute form is not expected.
  server.on("upgrade", (_req, socket: Duplex) => socket.destroy());
  server.on("clientError", (_error, socket: Duplex) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;

  return {
    server: `http://${host.includes(":") ? `[${host}]` : host}:${port}`,
    close: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      agent.destroy();
      await closed;
    },
  };
}

function forwardHeaders(headers: IncomingHttpHeaders): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || HOP_BY_HOP.has(name)) continue;
    out[name] = value;
  }
  return out;
}

/** Response headers as received (repeated Set-Cookie kept), minus hop-by-hop ones. */
function forwardRaw(raw: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i] as string;
    if (HOP_BY_HOP.has(name.toLowerCase())) continue;
    out.push(name, raw[i + 1] as string);
  }
  return out;
}

export type ResourceKind = "image" | "font" | "media" | "stylesheet";

const KIND_BY_DESTINATION: Readonly<Record<string, ResourceKind>> = {
  image: "image",
  font: "font",
  audio: "media",
  video: "media",
  track: "media",
  style: "stylesheet",
};

const KIND_BY_EXTENSION: Readonly<Record<string, ResourceKind>> = Object.fromEntries([
  ...["png", "jpg", "jpeg", "gif", "webp", "avif", "bmp", "ico", "svg", "tif", "tiff", "apng"].map(
    (e) => [e, "image"],
  ),
  ...["woff", "woff2", "ttf", "otf", "eot"].map((e) => [e, "font"]),
  ...[
    "mp4",
    "m4v",
    "webm",
    "ogv",
    "mov",
    "avi",
    "mkv",
    "mp3",
    "m4a",
    "ogg",
    "oga",
    "wav",
    "flac",
    "aac",
    "opus",
    "m3u8",
    "mpd",
    "vtt",
  ].map((e) => [e, "media"]),
  ["css", "stylesheet"],
]) as Record<string, ResourceKind>;

/**
 * What a plain HTTP request of Chromium asks for: its Sec-Fetch-Dest when sent (secure contexts
 * only), else its Accept header (`image/…` for images), the Range with identity encoding of media
 * requests, and last the path's extension. Documents (`Accept: text/html…`) are never a kind.
 */
export function resourceKind(url: URL, headers: IncomingHttpHeaders): ResourceKind | undefined {
  const destination = headers["sec-fetch-dest"];
  if (typeof destination === "string" && destination !== "empty") {
    return KIND_BY_DESTINATION[destination];
  }
  const accept = headers.accept ?? "";
  if (accept.startsWith("text/html")) return undefined;
  if (accept.startsWith("image/")) return "image";
  if (accept.startsWith("video/") || accept.startsWith("audio/")) return "media";
  if (accept.startsWith("text/css")) return "stylesheet";
  if (headers.range !== undefined && /^identity/.test(headers["accept-encoding"] ?? "")) {
    return "media";
  }
  const extension = /\.([a-z0-9]+)$/i.exec(url.pathname)?.[1]?.toLowerCase();
  return extension === undefined ? undefined : KIND_BY_EXTENSION[extension];
}
