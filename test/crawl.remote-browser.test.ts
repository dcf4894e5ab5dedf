import { createServer, request, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { chromium, type BrowserServer } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseConfig } from "../src/config/load-config.ts";
import {
  chromiumLaunchOptions,
  createBrowserPool,
  type BrowserPool,
} from "../src/crawl/browser-pool.ts";
import { startGuardedProxy } from "../src/crawl/browser-proxy.ts";
import { SsrfRefusedError } from "../src/crawl/crawl-error.ts";
import { createSsrfGuard } from "../src/crawl/ssrf-guard.ts";
import { CHROMIUM_PATH, chromiumAvailable } from "./support/chromium.ts";
import { MINIMAL_CONFIG_YAML } from "./support/minimal-config.ts";

/**
 * `crawl.browser.endpoint`: the browser pool connects to a Playwright browser server (started here
 * on loopback, as a browser farm would run it) instead of launching Chromium, and the SSRF guard
 * still holds for every request that browser makes: the contexts are this process's, each with its
 * guarded proxy, so a page asking for the metadata address or for an address outside crawl.allow
 * is refused, and nothing reaches that address.
 */

let browserServer: BrowserServer;
let site: Server;
let origin: string;
/** A server on 127.0.0.2: loopback, but outside crawl.allow (127.0.0.1/32). */
let forbidden: Server;
let forbiddenOrigin: string;
const forbiddenSeen: string[] = [];
const upstream: string[] = [];
let pool: BrowserPool;

const available = chromiumAvailable();

describe.skipIf(!available)("a remote browser server", () => {
  beforeAll(async () => {
    browserServer = await chromium.launchServer({
      ...chromiumLaunchOptions(CHROMIUM_PATH),
      host: "127.0.0.1",
    });
    forbidden = createServer((req, res) => {
      forbiddenSeen.push(req.url ?? "");
      res.end("SECRET");
    });
    await new Promise<void>((resolve) => forbidden.listen(0, "127.0.0.2", resolve));
    forbiddenOrigin = `http://127.0.0.2:${(forbidden.address() as AddressInfo).port}`;
    site = createServer((req, res) => {
      const url = new URL(req.url ?? "/", "http://x");
      if (url.pathname === "/redirect") {
        res.writeHead(302, { location: url.searchParams.get("to") ?? "/" }).end();
        return;
      }
      if (url.pathname === "/app") {
        res.writeHead(200, { "content-type": "text/html" });
        res.end(
          `<!doctype html><html><body><div id="root"></div><script>
            document.getElementById("root").innerHTML = "<main><p>Rendered remotely</p></main>";
          </script></body></html>`,
        );
        return;
      }
      if (url.pathname === "/nosy") {
        // A page whose scripts ask for the cloud metadata address and a host outside crawl.allow.
        res.writeHead(200, { "content-type": "text/html" });
        res.end(
          `<!doctype html><html><body><p id="out">waiting</p><script>
            const out = document.getElementById("out");
            const get = (u) => fetch(u).then((r) => r.text()).then((t) => "got " + t, (e) => "refused");
            Promise.all([get("http://169.254.169.254/latest/meta-data/"), get(${JSON.stringify(`${forbiddenOrigin}/secret`)})])
              .then((r) => { out.textContent = r.join(" | "); });
          </script></body></html>`,
        );
        return;
      }
      res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => site.listen(0, "127.0.0.1", resolve));
    origin = `http://127.0.0.1:${(site.address() as AddressInfo).port}`;
    pool = createBrowserPool({
      size: 2,
      endpoint: browserServer.wsEndpoint(),
      // Nothing is launched here: a local launch would fail on this path.
      executablePath: "/nonexistent/chromium",
      allow: ["127.0.0.1/32"],
      timeoutMs: 30_000,
      onUpstreamConnect: (address, port) => upstream.push(`${address}:${port}`),
    });
  }, 60_000);

  afterAll(async () => {
    await pool?.close();
    await browserServer?.close();
    for (const server of [site, forbidden]) {
      server?.closeAllConnections();
      await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    }
  });

  it("renders pages through the browser server", async () => {
    const page = await pool.render(`${origin}/app`);
    expect(page.html).toContain("Rendered remotely");
    const again = await pool.render(`${origin}/app`);
    expect(again.html).toContain("Rendered remotely");
  }, 60_000);

  it("refuses a page's requests to the metadata address and outside crawl.allow", async () => {
    const page = await pool.render(`${origin}/nosy`);
    expect(page.html).toContain("refused | refused");
    expect(page.refusedRequests.map((r) => r.url).sort()).toEqual(
      [`${forbiddenOrigin}/secret`, "http://169.254.169.254/latest/meta-data/"].sort(),
    );
    expect(forbiddenSeen).toEqual([]);
    expect(upstream.every((u) => u.startsWith("127.0.0.1:"))).toBe(true);
  }, 60_000);

  it("refuses a navigation redirected outside crawl.allow", async () => {
    const to = encodeURIComponent(`${forbiddenOrigin}/secret`);
    const error = await pool.render(`${origin}/redirect?to=${to}`).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SsrfRefusedError);
    expect(forbiddenSeen).toEqual([]);
  }, 60_000);

  it("says which key holds an unreachable endpoint", async () => {
    const lost = createBrowserPool({
      size: 1,
      endpoint: "ws://127.0.0.1:9/nothing",
      allow: ["127.0.0.1/32"],
      timeoutMs: 5_000,
    });
    try {
      await expect(lost.render(`${origin}/app`)).rejects.toThrow(/crawl\.browser\.endpoint/);
    } finally {
      await lost.close();
    }
  }, 60_000);
});

describe("the guarded proxy of a remote browser", () => {
  it("answers 407 to a client without its credentials", async () => {
    const target = createServer((_req, res) => res.end("reached"));
    await new Promise<void>((resolve) => target.listen(0, "127.0.0.1", resolve));
    const url = `http://127.0.0.1:${(target.address() as AddressInfo).port}/`;
    const guard = createSsrfGuard({ allow: ["127.0.0.1/32"] });
    const proxy = await startGuardedProxy(
      guard,
      {},
      {
        credentials: { username: "gleaner", password: "s3cret-pass" },
      },
    );
    const ask = (auth?: string) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const { hostname, port } = new URL(proxy.server);
        const req = request(
          { hostname, port, path: url, headers: auth ? { "proxy-authorization": auth } : {} },
          (res) => {
            let body = "";
            res.on("data", (d: Buffer) => (body += d.toString()));
            res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
          },
        );
        req.on("error", reject);
        req.end();
      });
    try {
      expect((await ask()).status).toBe(407);
      expect((await ask(`Basic ${Buffer.from("gleaner:wrong").toString("base64")}`)).status).toBe(
        407,
      );
      const ok = await ask(`Basic ${Buffer.from("gleaner:s3cret-pass").toString("base64")}`);
      expect(ok).toEqual({ status: 200, body: "reached" });
    } finally {
      await proxy.close();
      await guard.close();
      target.closeAllConnections();
      await new Promise<void>((resolve) => target.close(() => resolve()));
    }
  });
});

describe("crawl.browser.endpoint in the config", () => {
  const withBrowser = (browser: object) =>
    JSON.stringify({ ...JSON.parse(MINIMAL_CONFIG_YAML), crawl: { browser } });

  it("takes a ws:// URL and a proxy address", () => {
    const config = parseConfig(
      withBrowser({ endpoint: "ws://browsers.internal:3000/abc", proxy_host: "10.0.0.5" }),
      { env: {} },
    );
    expect(config.crawl.browser.endpoint).toBe("ws://browsers.internal:3000/abc");
    expect(config.crawl.browser.proxyHost).toBe("10.0.0.5");
  });

  it("defaults to a local Chromium and proxies on loopback", () => {
    const config = parseConfig(MINIMAL_CONFIG_YAML, { env: {} });
    expect(config.crawl.browser.endpoint).toBeUndefined();
    expect(config.crawl.browser.proxyHost).toBe("127.0.0.1");
  });

  it("names the key of a bad URL or address", () => {
    expect(() => parseConfig(withBrowser({ endpoint: "browsers:3000" }), { env: {} })).toThrow(
      /crawl\.browser\.endpoint.*ws:\/\/ or wss:\/\//s,
    );
    expect(() =>
      parseConfig(withBrowser({ endpoint: "http://browsers:3000/abc" }), { env: {} }),
    ).toThrow(/crawl\.browser\.endpoint/);
    expect(() => parseConfig(withBrowser({ proxy_host: "browsers" }), { env: {} })).toThrow(
      /crawl\.browser\.proxy_host/,
    );
  });
});
