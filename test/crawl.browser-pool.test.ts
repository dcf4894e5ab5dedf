import { readdirSync, readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CrawlError, SsrfRefusedError } from "../src/crawl/crawl-error.ts";
import { createBrowserPool, type BrowserPool } from "../src/crawl/browser-pool.ts";
import { CHROMIUM_PATH, chromiumAvailable } from "./support/chromium.ts";
import {
  BROWSER_METADATA_URL,
  jsItemText,
  startFixtureSite,
  type FixtureSite,
} from "./support/fixture-site.ts";

/**
 * The browser path on the fixture site with Debian's Chromium, launched with the pool's own flags:
 * script-inserted text, images, fonts and media never fetched, the page's own requests and every
 * redirect hop checked by the SSRF guard (the metadata address refused, recorded, never connected
 * to), contexts reused with nothing left from one row to the next, dialogs, downloads, pop-ups and
 * hung scripts dealt with, the browser relaunched after a crash and gone after close().
 */

const available = chromiumAvailable();
const SIZE = 3;
let site: FixtureSite;
let pool: BrowserPool;
/** Every socket the pool's proxies opened: where browser traffic really went. */
const upstream: string[] = [];

function newPool(extra: Parameters<typeof createBrowserPool>[0] = {}): BrowserPool {
  return createBrowserPool({
    size: SIZE,
    executablePath: CHROMIUM_PATH,
    allow: ["127.0.0.1/32"],
    timeoutMs: 10_000,
    onUpstreamConnect: (address, port) => upstream.push(`${address}:${port}`),
    ...extra,
  });
}

/** Chromium processes descended from this test process: ours, not another file's. */
function ourChromiumProcesses(): { pid: number; browser: boolean }[] {
  const parents = new Map<number, number>();
  const commands = new Map<number, string>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      parents.set(Number(entry), ppid);
      commands.set(Number(entry), readFileSync(`/proc/${entry}/cmdline`, "utf8"));
    } catch {
      // The process ended while we looked.
    }
  }
  const ours = (pid: number): boolean => {
    for (let p = parents.get(pid), hops = 0; p !== undefined && hops < 10; hops++) {
      if (p === process.pid) return true;
      p = parents.get(p);
    }
    return false;
  };
  return [...commands]
    .filter(([pid, cmd]) => cmd.includes("chromium") && ours(pid))
    .map(([pid, cmd]) => ({ pid, browser: !cmd.includes("--type=") }));
}

beforeAll(async () => {
  site = await startFixtureSite();
  if (available) pool = newPool();
});
afterAll(async () => {
  await pool?.close();
  await site?.close();
});

describe.skipIf(!available)("browser pool", () => {
  it("renders text that only exists once the page's scripts ran", async () => {
    const plain = await (await fetch(site.url("/browser/js/7"))).text();
    expect(plain).not.toContain(jsItemText(7));

    const page = await pool.render(site.url("/browser/js/7"));
    expect(page.status).toBe(200);
    expect(page.finalUrl).toBe(site.url("/browser/js/7"));
    expect(page.title).toBe("Item 7");
    expect(page.html).toContain(jsItemText(7));
    expect(page.refusedRequests).toEqual([]);
    expect(page.truncated).toBe(false);
  });

  it("never fetches images, fonts and media, and counts those the proxy refused", async () => {
    const page = await pool.render(site.url("/browser/assets"));
    expect(page.status).toBe(200);
    // Chromium asks for no image and no web font at all; the video's request reaches the proxy,
    // which answers it without going upstream.
    expect(page.blockedRequests).toBeGreaterThanOrEqual(1);
    expect(site.hits("/image.png")).toBe(0);
    expect(site.hits("/browser/font.woff2")).toBe(0);
    expect(site.hits("/browser/clip.mp4")).toBe(0);
    // Stylesheets pass unless asked otherwise.
    expect(site.hits("/browser/style.css")).toBeGreaterThanOrEqual(1);
  });

  it("refuses an image a script fetches itself, by what it is", async () => {
    const page = await pool.render(site.url("/browser/fetch-image"));
    expect(page.html).toContain('<p id="result">answer 204</p>');
    expect(page.blockedRequests).toBeGreaterThanOrEqual(1);
    expect(site.hits("/image.png")).toBe(0);
  });

  it("refuses and records the metadata request a page's script makes, never connecting", async () => {
    const before = upstream.length;
    const page = await pool.render(site.url("/browser/fetch-metadata"));
    expect(page.status).toBe(200);
    expect(page.refusedRequests).toEqual([
      {
        url: BROWSER_METADATA_URL,
        reason: "linkLocal",
        address: "169.254.169.254",
        by: "proxy",
      },
    ]);
    // The page saw a network error, not an answer.
    expect(page.html).toContain('<p id="result">blocked</p>');
    expect(upstream.slice(before).every((a) => a === `127.0.0.1:${site.port}`)).toBe(true);
  });

  it("refuses a redirect hop of a page's request, which no page hook sees", async () => {
    const before = upstream.length;
    const page = await pool.render(site.url("/browser/fetch-redirect-metadata"));
    expect(page.refusedRequests).toEqual([
      {
        url: BROWSER_METADATA_URL,
        reason: "linkLocal",
        address: "169.254.169.254",
        by: "proxy",
      },
    ]);
    expect(page.html).not.toContain("answer 200");
    expect(site.hits("/browser/redirect-forbidden")).toBeGreaterThanOrEqual(1);
    expect(upstream.slice(before).every((a) => a === `127.0.0.1:${site.port}`)).toBe(true);
  });

  it("fails a navigation redirected to a forbidden address with SsrfRefusedError", async () => {
    const before = upstream.length;
    const error: unknown = await pool
      .render(site.url("/browser/redirect-forbidden"))
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SsrfRefusedError);
    expect(error).toMatchObject({
      url: BROWSER_METADATA_URL,
      address: "169.254.169.254",
      reason: "linkLocal",
      errorClass: "ssrf_refused",
    });
    expect(upstream.slice(before).every((a) => a === `127.0.0.1:${site.port}`)).toBe(true);
    // The pool is still fine afterwards.
    expect((await pool.render(site.url("/browser/js/8"))).html).toContain(jsItemText(8));
  });

  it("refuses a forbidden navigation before the browser is involved", async () => {
    await expect(pool.render(BROWSER_METADATA_URL)).rejects.toBeInstanceOf(SsrfRefusedError);
    const strict = newPool({ allow: [] });
    try {
      await expect(strict.render(site.url("/browser/js/1"))).rejects.toMatchObject({
        name: "SsrfRefusedError",
        reason: "loopback",
      });
      expect(strict.stats().launches).toBe(0);
    } finally {
      await strict.close();
    }
  });

  it("reuses its contexts: 20 renders, one browser, pool-size contexts", async () => {
    const pages = await Promise.all(
      Array.from({ length: 20 }, (_, i) => pool.render(site.url(`/browser/js/${100 + i}`))),
    );
    pages.forEach((page, i) => expect(page.html).toContain(jsItemText(100 + i)));
    const stats = pool.stats();
    expect(stats.launches).toBe(1);
    expect(stats.contextsCreated).toBe(SIZE);
    expect(stats.contextsOpen).toBe(SIZE);
    expect(stats.waiting).toBe(0);
  });

  it("leaves no cookies or storage of one row to the next", async () => {
    const single = newPool({ size: 1 });
    try {
      const first = await single.render(site.url("/browser/storage"));
      expect(first.html).toContain("local=null cookie=none");
      const second = await single.render(site.url("/browser/storage"));
      expect(second.html).toContain("local=null cookie=none");
      // Session storage belongs to the tab, which the next row reuses.
      for (let i = 0; i < 2; i++) {
        const page = await single.render(site.url("/browser/session-storage"));
        expect(page.html).toContain("session=null");
      }
      expect(single.stats().contextsCreated).toBe(1);
    } finally {
      await single.close();
    }
  });

  it("reads the document a script redirect leads to when it answers after the first one settled", async () => {
    const page = await pool.render(site.url("/browser/script-redirect-slow"));
    expect(page.finalUrl).toBe(site.url("/browser/slow/js/12"));
    expect(page.html).toContain(jsItemText(12));
  });

  it("reads the document a script redirect leads to", async () => {
    const page = await pool.render(site.url("/browser/script-redirect"));
    expect(page.finalUrl).toBe(site.url("/browser/js/11"));
    expect(page.html).toContain(jsItemText(11));
  });

  it("dismisses dialogs and opens no pop-up", async () => {
    const alert = await pool.render(site.url("/browser/alert"));
    expect(alert.html).toContain("after the alert");
    const popup = await pool.render(site.url("/browser/popup"));
    expect(popup.html).toContain("popup blocked");
    expect(site.hits("/browser/popup-target")).toBe(0);
  });

  it("fails a download as unsupported_type", async () => {
    await expect(pool.render(site.url("/browser/download"))).rejects.toMatchObject({
      name: "CrawlError",
      errorClass: "unsupported_type",
    });
    expect((await pool.render(site.url("/browser/js/12"))).html).toContain(jsItemText(12));
  });

  it("ends a page whose script never yields at the deadline, and replaces its context", async () => {
    const single = newPool({ size: 1 });
    try {
      await single.render(site.url("/browser/js/13"));
      const started = performance.now();
      const error: unknown = await single
        .render(site.url("/browser/hang"), { timeoutMs: 1_500 })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(CrawlError);
      expect(error).toMatchObject({ errorClass: "timeout" });
      expect(performance.now() - started).toBeLessThan(3_000);
      const next = await single.render(site.url("/browser/js/14"));
      expect(next.html).toContain(jsItemText(14));
      expect(single.stats()).toMatchObject({ launches: 1, contextsCreated: 2, contextsOpen: 1 });
    } finally {
      await single.close();
    }
  });

  it("fails a render aborted by its signal at once", async () => {
    const controller = new AbortController();
    const rendering = pool.render(site.url("/browser/hang"), { signal: controller.signal });
    setTimeout(() => controller.abort(new Error("row cancelled")), 300);
    await expect(rendering).rejects.toThrow("row cancelled");
    expect((await pool.render(site.url("/browser/js/15"))).html).toContain(jsItemText(15));
  });

  it("caps the HTML at maxBytes", async () => {
    const page = await pool.render(site.url("/browser/js/9"), { maxBytes: 100 });
    expect(Buffer.byteLength(page.html)).toBeLessThanOrEqual(100);
    expect(page.truncated).toBe(true);
  });

  it("relaunches Chromium after it dies, and close() leaves none of ours behind", async () => {
    const own = newPool({ size: 1 });
    const browserPids = () => ourChromiumProcesses().flatMap((p) => (p.browser ? [p.pid] : []));
    try {
      const others = new Set(browserPids());
      await own.render(site.url("/browser/js/1"));
      const launched = browserPids().filter((pid) => !others.has(pid));
      expect(launched).toHaveLength(1);
      const before = new Set(browserPids());
      // A crash: the browser process this pool launched dies under it.
      process.kill(launched[0] as number, "SIGKILL");
      await waitFor(() => own.stats().contextsOpen === 0);
      const page = await own.render(site.url("/browser/js/2"));
      expect(page.html).toContain(jsItemText(2));
      expect(own.stats().launches).toBe(2);
      expect(ourChromiumProcesses().some((p) => p.browser && !before.has(p.pid))).toBe(true);
    } finally {
      await own.close();
    }
    await pool.close();
    await waitFor(() => ourChromiumProcesses().length === 0);
    expect(ourChromiumProcesses()).toEqual([]);
  });
});

async function waitFor(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
