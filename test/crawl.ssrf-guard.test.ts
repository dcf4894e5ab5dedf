import { subscribe, unsubscribe } from "node:diagnostics_channel";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { request } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createBrowserPool, type BrowserPool } from "../src/crawl/browser-pool.ts";
import { CrawlError, SsrfRefusedError } from "../src/crawl/crawl-error.ts";
import { createCrawler, type Crawler } from "../src/crawl/crawler.ts";
import { serveCorpus } from "../src/http/serve-corpus.ts";
import { CHROMIUM_PATH, chromiumAvailable } from "./support/chromium.ts";
import { classifyAddress } from "../src/core/address-ranges.ts";
import { createSsrfGuard, type Resolver } from "../src/crawl/ssrf-guard.ts";
import { startFixtureSite, type FixtureSite } from "./support/fixture-site.ts";

/**
 * The SSRF guard: which addresses pass (classification only, no traffic leaves loopback), the
 * allow list by host and by range, the undici connector that connects only to what it checked,
 * with DNS answered by injected resolvers, and Gleaner's own port, of which only the corpus
 * folders pass, on the fetch path and in the browser.
 */

const table: [string, boolean][] = [
  ["127.0.0.1", false],
  ["127.8.9.10", false],
  ["::1", false],
  ["[::1]", false],
  ["10.0.0.1", false],
  ["172.16.0.1", false],
  ["172.31.255.255", false],
  ["192.168.1.1", false],
  ["169.254.169.254", false],
  ["fe80::1", false],
  ["fd00::1", false],
  ["fc00::1", false],
  ["::ffff:127.0.0.1", false],
  ["::ffff:10.0.0.1", false],
  ["::ffff:169.254.169.254", false],
  ["0.0.0.0", false],
  ["0.1.2.3", false],
  ["::", false],
  ["100.64.0.1", false],
  ["100.127.255.255", false],
  ["224.0.0.1", false],
  ["ff02::1", false],
  ["255.255.255.255", false],
  ["192.0.2.10", false], // TEST-NET-1
  ["198.51.100.7", false], // TEST-NET-2
  ["203.0.113.9", false], // TEST-NET-3
  ["198.18.0.1", false], // benchmarking
  ["240.0.0.1", false], // reserved
  ["2001:db8::1", false], // documentation
  ["64:ff9b::a00:1", false], // NAT64 of 10.0.0.1
  ["2002:a00:1::", false], // 6to4 of 10.0.0.1
  ["not-an-address", false],
  ["8.8.8.8", true],
  ["1.1.1.1", true],
  ["172.32.0.1", true], // just outside 172.16/12
  ["100.128.0.1", true], // just outside 100.64/10
  ["::ffff:8.8.8.8", true],
  ["2606:4700:4700::1111", true],
];

describe("classifyAddress", () => {
  it.each(table)("%s allowed=%s", (address, allowed) => {
    expect(classifyAddress(address).allowed).toBe(allowed);
  });

  it("names the range it refused", () => {
    expect(classifyAddress("169.254.169.254").range).toBe("linkLocal");
    expect(classifyAddress("::ffff:10.0.0.1").range).toBe("private");
    expect(classifyAddress("100.64.0.1").range).toBe("carrierGradeNat");
  });
});

describe("allow list", () => {
  const guard = createSsrfGuard({
    allow: ["127.0.0.1/32", "fixture.test", "*.corp.example", "10.1.0.0/16", "fd12::/16"],
  });
  afterAll(() => guard.close());

  it("lets a CIDR range through and nothing next to it", () => {
    expect(guard.checkAddress("127.0.0.1").allowed).toBe(true);
    expect(guard.checkAddress("::ffff:127.0.0.1").allowed).toBe(true);
    expect(guard.checkAddress("127.0.0.2").allowed).toBe(false);
    expect(guard.checkAddress("10.1.200.3").allowed).toBe(true);
    expect(guard.checkAddress("10.2.0.1").allowed).toBe(false);
    expect(guard.checkAddress("fd12::5").allowed).toBe(true);
    expect(guard.checkAddress("fd13::5").allowed).toBe(false);
  });

  it("lets named hosts through whatever they resolve to", () => {
    expect(guard.checkAddress("192.168.0.9", "fixture.test").allowed).toBe(true);
    expect(guard.checkAddress("192.168.0.9", "wiki.corp.example").allowed).toBe(true);
    expect(guard.checkAddress("192.168.0.9", "corp.example.evil").allowed).toBe(false);
  });

  it("rejects a malformed range at start", () => {
    expect(() => createSsrfGuard({ allow: ["10.0.0.0/99"] })).toThrow(/crawl.allow/);
  });
});

describe("after DNS resolution", () => {
  const zone: Record<string, string[]> = {
    "public.test": ["93.184.216.34"],
    "internal.test": ["10.0.0.7"],
    "mixed.test": ["93.184.216.34", "192.168.0.1"],
    "metadata.test": ["169.254.169.254"],
    "fixture.test": ["127.0.0.1"],
  };
  const asked: string[] = [];
  const resolver: Resolver = (hostname) => {
    asked.push(hostname);
    return Promise.resolve(
      (zone[hostname] ?? []).map((address) => ({
        address,
        family: address.includes(":") ? (6 as const) : (4 as const),
      })),
    );
  };
  const guard = createSsrfGuard({ resolver });
  afterAll(() => guard.close());

  it("refuses a name that resolves to a private address", async () => {
    const error = await guard.assertUrlAllowed("http://internal.test/x").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SsrfRefusedError);
    expect(error).toMatchObject({
      url: "http://internal.test/x",
      address: "10.0.0.7",
      reason: "private",
      errorClass: "ssrf_refused",
    });
  });

  it("refuses when any one of the addresses is forbidden", async () => {
    await expect(guard.assertUrlAllowed("http://mixed.test/")).rejects.toMatchObject({
      address: "192.168.0.1",
    });
  });

  it("passes a public name (checked only: nothing is fetched)", async () => {
    await expect(guard.assertUrlAllowed("https://public.test/")).resolves.toEqual([
      { address: "93.184.216.34", family: 4 },
    ]);
  });

  it("refuses IP literals in URLs without asking DNS, including the bracketed IPv6 form", async () => {
    const before = asked.length;
    await expect(guard.assertUrlAllowed("http://[::ffff:7f00:1]/")).rejects.toBeInstanceOf(
      SsrfRefusedError,
    );
    await expect(guard.assertUrlAllowed("http://0x7f.1/")).rejects.toMatchObject({
      address: "127.0.0.1",
    });
    expect(asked.length).toBe(before);
  });

  it("a name that does not resolve is a connection error, not a pass", async () => {
    await expect(guard.assertUrlAllowed("http://nowhere.test/")).rejects.toMatchObject({
      errorClass: "connection",
    });
  });

  it("refuses non-http schemes", async () => {
    await expect(guard.assertUrlAllowed("file:///etc/passwd")).rejects.toMatchObject({
      errorClass: "invalid_url",
    });
  });
});

describe("the guarded undici dispatcher", () => {
  let site: FixtureSite;
  const connected: string[] = [];
  const onConnected = (message: unknown) => {
    const { socket } = message as { socket: { remoteAddress?: string } };
    connected.push(socket.remoteAddress ?? "?");
  };
  const resolver: Resolver = (hostname) =>
    Promise.resolve(
      hostname === "fixture.test" || hostname === "other.test"
        ? [{ address: "127.0.0.1", family: 4 }]
        : hostname === "metadata.test"
          ? [{ address: "169.254.169.254", family: 4 }]
          : [],
    );

  beforeAll(async () => {
    site = await startFixtureSite();
    subscribe("undici:client:connected", onConnected);
  });
  afterAll(async () => {
    unsubscribe("undici:client:connected", onConnected);
    await site.close();
  });

  it("refuses the fixture site on loopback by default, before connecting", async () => {
    const guard = createSsrfGuard({ resolver });
    try {
      const before = connected.length;
      const error = await request(site.url("/about.html"), { dispatcher: guard.dispatcher }).catch(
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(SsrfRefusedError);
      expect(error).toMatchObject({ address: "127.0.0.1", reason: "loopback" });
      expect(connected.length).toBe(before);
      expect(site.hits("/about.html")).toBe(0);
    } finally {
      await guard.close();
    }
  });

  it("connects to the address the injected resolver gave, for an allowed name", async () => {
    const guard = createSsrfGuard({ resolver, allow: ["fixture.test"] });
    try {
      const before = connected.length;
      const response = await request(`http://fixture.test:${site.port}/about.html`, {
        dispatcher: guard.dispatcher,
      });
      expect(response.statusCode).toBe(200);
      await response.body.text();
      expect(site.requests.at(-1)?.headers.host).toBe(`fixture.test:${site.port}`);
      // The diagnostics channel does see connections: the "nothing connected" checks mean something.
      expect(connected.slice(before)).toEqual(["127.0.0.1"]);
      // The allow list names one host: another name resolving to loopback is still refused.
      await expect(
        request(`http://other.test:${site.port}/about.html`, { dispatcher: guard.dispatcher }),
      ).rejects.toBeInstanceOf(SsrfRefusedError);
    } finally {
      await guard.close();
    }
  });

  it("refuses in the connector a name resolving to the metadata address: no socket opened", async () => {
    const guard = createSsrfGuard({ resolver, allow: ["127.0.0.1/32"] });
    try {
      const before = connected.length;
      await expect(
        request("http://metadata.test/latest/meta-data", { dispatcher: guard.dispatcher }),
      ).rejects.toMatchObject({ address: "169.254.169.254", reason: "linkLocal" });
      expect(connected.length).toBe(before);
    } finally {
      await guard.close();
    }
  });
});

/**
 * Stands in for Gleaner's HTTP port: /corpus/docs/ is served by the real serveCorpus from a
 * folder, anything else answers with "private" data (as /v1/jobs, /metrics and /openapi.json
 * would) and is counted. A page may lead the crawler here by a link, a redirect or a script.
 */
interface OwnPort {
  origin: string;
  /** `<origin>/corpus/docs/` */
  prefix: string;
  /** Requests that reached anything but the corpus folder. */
  leaked: string[];
  close(): Promise<void>;
}

async function startOwnPort(): Promise<OwnPort> {
  const folder = mkdtempSync(join(tmpdir(), "gleaner-ssrf-corpus-"));
  writeFileSync(
    join(folder, "about.html"),
    "<html><title>About</title><p>Acme corpus page</p></html>",
  );
  const leaked: string[] = [];
  let prefix = "";
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = req.url ?? "/";
    const corpora = [{ provider: "docs", corpus: "docs", folder, baseUrl: prefix }];
    if (serveCorpus(corpora, path.split("?")[0] ?? "/", res)) return;
    leaked.push(path);
    res.writeHead(200, { "content-type": "text/html" });
    res.end("<p>PRIVATE other jobs' results</p>");
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  prefix = `${origin}/corpus/docs/`;
  return {
    origin,
    prefix,
    leaked,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      rmSync(folder, { recursive: true, force: true });
    },
  };
}

/** A public-looking site (`pages.test`, on loopback through the resolver) whose pages lead to `own`. */
async function startLeadingSite(own: () => OwnPort): Promise<{ port: number; server: Server }> {
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://pages.test");
    const to = url.searchParams.get("to");
    if (url.pathname === "/redirect" && to) {
      res.writeHead(302, { location: to }).end();
      return;
    }
    if (url.pathname === "/leads") {
      const o = own().origin;
      res.writeHead(200, { "content-type": "text/html" });
      res.end(`<!doctype html><html><head><title>Leads</title></head><body>
<a href="${o}/v1/jobs">jobs</a>
<iframe src="${o}/metrics"></iframe>
<iframe src="${o}/corpus/docs/../../openapi.json"></iframe>
<p id="result">waiting</p>
<script>
  const show = (text) => { document.getElementById("result").textContent = text; };
  Promise.allSettled([
    fetch("${o}/v1/pipelines").then((r) => r.text()),
    fetch("${o}/corpus/docs/%2e%2e/%2e%2e/v1/jobs").then((r) => r.text()),
  ]).then((all) => show(all.map((a) => a.status + ":" + (a.value ?? "").slice(0, 40)).join(" | ")));
</script>
</body></html>`);
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { port: (server.address() as AddressInfo).port, server };
}

const pagesResolver: Resolver = (hostname) =>
  Promise.resolve(hostname === "pages.test" ? [{ address: "127.0.0.1", family: 4 }] : []);

describe("Gleaner's own port: only its corpus folders pass", () => {
  let own: OwnPort;
  let site: { port: number; server: Server };
  let crawler: Crawler;
  const payloads = (o: string) => [
    `${o}/v1/jobs`,
    `${o}/v1/pipelines`,
    `${o}/metrics`,
    `${o}/openapi.json`,
    `${o}/`,
    `${o}/corpus/docs/../../v1/jobs`,
    `${o}/corpus/docs/%2e%2e/%2e%2e/v1/jobs`,
    `${o}/corpus/docs/%2E%2E/%2E%2E/metrics`,
    `${o}/corpus/docs/..\\..\\openapi.json`,
    `${o}/corpus%2fdocs/../../v1/jobs`,
    `${o}/corpus/docs%2f..%2f..%2fv1/jobs`,
    `${o}/corpus/other/x.html`,
    `${o.replace("http:", "https:")}/v1/jobs`,
  ];

  beforeAll(async () => {
    own = await startOwnPort();
    site = await startLeadingSite(() => own);
    crawler = createCrawler({
      allow: ["pages.test"],
      allowPrefixes: [own.prefix],
      resolver: pagesResolver,
      perHostDelayMs: 0,
      robots: { enabled: false },
    });
  });
  afterAll(async () => {
    await crawler?.close();
    site?.server.closeAllConnections();
    await new Promise<void>((resolve) => site?.server.close(() => resolve()));
    await own?.close();
  });

  it("fetches a corpus page of its own port although loopback is refused", async () => {
    const page = await crawler.fetch(`${own.prefix}about.html`);
    expect(page.status).toBe(200);
    expect(page.body).toContain("Acme corpus page");
  });

  it("refuses every other path of that port, however it is spelled, before any request", async () => {
    for (const url of payloads(own.origin)) {
      const error = await crawler.fetch(url).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error, url).toBeInstanceOf(SsrfRefusedError);
    }
    expect(own.leaked).toEqual([]);
  });

  it("refuses a redirect from a page into the API, /metrics or /openapi.json", async () => {
    for (const target of payloads(own.origin).slice(0, 7)) {
      const url = `http://pages.test:${site.port}/redirect?to=${encodeURIComponent(target)}`;
      const error = await crawler.fetch(url).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error, target).toBeInstanceOf(SsrfRefusedError);
    }
    expect(own.leaked).toEqual([]);
    // A redirect into the corpus folder is followed.
    const into = `http://pages.test:${site.port}/redirect?to=${encodeURIComponent(`${own.prefix}about.html`)}`;
    expect((await crawler.fetch(into)).body).toContain("Acme corpus page");
  });

  it("lets an encoded slash under the prefix reach only the corpus server, which refuses it", async () => {
    const error = await crawler.fetch(`${own.prefix}..%2f..%2fv1%2fjobs`).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(CrawlError);
    expect((error as CrawlError).status).toBe(404);
    expect(own.leaked).toEqual([]);
  });

  it("refuses the rest of the port even when crawl.allow opens its address", async () => {
    const open = createCrawler({
      allow: ["127.0.0.1/32"],
      allowPrefixes: [own.prefix],
      perHostDelayMs: 0,
      robots: { enabled: false },
    });
    try {
      await expect(open.fetch(`${own.origin}/metrics`)).rejects.toBeInstanceOf(SsrfRefusedError);
      expect((await open.fetch(`${own.prefix}about.html`)).status).toBe(200);
    } finally {
      await open.close();
    }
    expect(own.leaked).toEqual([]);
  });

  it("refuses it in the dispatcher too, for a request that skipped assertUrlAllowed", async () => {
    for (const path of [
      "/v1/jobs",
      "/corpus/docs/../../v1/jobs",
      "/corpus/docs/%2e%2e/%2e%2e/metrics",
    ]) {
      const error = await crawler.guard.dispatcher
        .request({ origin: own.origin, path, method: "GET" })
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      expect(error, path).toBeInstanceOf(SsrfRefusedError);
    }
    const ok = await crawler.guard.dispatcher.request({
      origin: own.origin,
      path: "/corpus/docs/about.html",
      method: "GET",
    });
    expect(ok.statusCode).toBe(200);
    await ok.body.text();
    expect(own.leaked).toEqual([]);
  });

  it("refuses a prefix that would open the whole origin", () => {
    expect(() => createSsrfGuard({ allowPrefixes: [own.origin] })).toThrow(/must name a folder/);
    expect(() => createSsrfGuard({ allowPrefixes: [`${own.origin}/corpus`] })).toThrow(
      /must name a folder/,
    );
  });

  describe.skipIf(!chromiumAvailable())("in the browser", () => {
    let pool: BrowserPool;
    beforeAll(() => {
      pool = createBrowserPool({
        size: 1,
        executablePath: CHROMIUM_PATH,
        guard: crawler.guard,
        timeoutMs: 15_000,
      });
    });
    afterAll(() => pool?.close());

    it("renders a corpus page of its own port", async () => {
      const page = await pool.render(`${own.prefix}about.html`);
      expect(page.html).toContain("Acme corpus page");
    });

    it("refuses a navigation redirected into the API", async () => {
      for (const target of [`${own.origin}/v1/jobs`, `${own.origin}/corpus/docs/../../metrics`]) {
        const url = `http://pages.test:${site.port}/redirect?to=${encodeURIComponent(target)}`;
        const error = await pool.render(url).catch((e: unknown) => e);
        expect(error, target).toBeInstanceOf(SsrfRefusedError);
      }
      expect(own.leaked).toEqual([]);
    });

    it("refuses the frames and scripts of a page into the API", async () => {
      const page = await pool.render(`http://pages.test:${site.port}/leads`);
      expect(page.html).toContain('<p id="result">rejected: | rejected:</p>');
      expect(page.html).not.toContain("PRIVATE");
      expect(page.refusedRequests.map((r) => new URL(r.url).pathname).sort()).toEqual(
        ["/metrics", "/openapi.json", "/v1/jobs", "/v1/pipelines"].sort(),
      );
      expect(own.leaked).toEqual([]);
    });
  });
});
