import { createServer } from "node:http";
import type { AddressInfo } from "node:net";

/** A site on 127.0.0.1 serving the HTML a test gives it, per path; anything else is a 404. */
export interface PageMapSite {
  origin: string;
  url(path: string): string;
  /** Sets (or replaces) the HTML of a path. */
  set(path: string, html: string): void;
  close(): Promise<void>;
}

export async function startPageMapSite(pages: Record<string, string> = {}): Promise<PageMapSite> {
  const map = new Map(Object.entries(pages));
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? "/", "http://site").pathname;
    if (path === "/robots.txt") {
      res.writeHead(200, { "content-type": "text/plain" });
      return res.end("User-agent: *\nAllow: /\n");
    }
    const html = map.get(path);
    res.writeHead(html === undefined ? 404 : 200, { "content-type": "text/html; charset=utf-8" });
    res.end(html ?? "not found");
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    origin,
    url: (path) => `${origin}${path}`,
    set: (path, html) => void map.set(path, html),
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
