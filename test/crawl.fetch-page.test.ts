import { subscribe, unsubscribe } from "node:diagnostics_channel";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CrawlError, SsrfRefusedError } from "../src/crawl/crawl-error.ts";
import { fetchPage, type FetchPageOptions } from "../src/crawl/fetch-page.ts";
import { createSsrfGuard, type SsrfGuard } from "../src/crawl/ssrf-guard.ts";
import {
  ABOUT_JSON_LD,
  HUGE_BYTES,
  METADATA_URL,
  startFixtureSite,
  type FixtureSite,
} from "./support/fixture-site.ts";

/**
 * fetchPage against the loopback fixture site: redirects (each hop guarded), limits, charset,
 * conditional requests, and the class of every failure.
 */

let site: FixtureSite;
let guard: SsrfGuard;
let options: FetchPageOptions;
const connectAttempts: string[] = [];
const onBeforeConnect = (message: unknown) => {
  const { connectParams } = message as { connectParams: { hostname: string } };
  connectAttempts.push(connectParams.hostname);
};

beforeAll(async () => {
  site = await startFixtureSite();
  guard = createSsrfGuard({ allow: ["127.0.0.1/32"] });
  options = { dispatcher: guard.dispatcher, guard, timeoutMs: 2_000, maxBytes: 1024 * 1024 };
  subscribe("undici:client:beforeConnect", onBeforeConnect);
});
afterAll(async () => {
  unsubscribe("undici:client:beforeConnect", onBeforeConnect);
  await guard.close();
  await site.close();
});

async function failure(url: string, extra: Partial<FetchPageOptions> = {}): Promise<CrawlError> {
  const error = await fetchPage(url, { ...options, ...extra }).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(CrawlError);
  return error as CrawlError;
}

describe("fetchPage", () => {
  it("fetches an HTML page with its JSON-LD, metadata and our user agent", async () => {
    const page = await fetchPage(site.url("/about.html"), {
      ...options,
      userAgent: "Gleaner/9 test",
    });
    expect(page).toMatchObject({
      kind: "page",
      url: site.url("/about.html"),
      finalUrl: site.url("/about.html"),
      status: 200,
      contentType: "text/html",
      charset: "utf-8",
      redirects: [],
    });
    if (page.kind !== "page") throw new Error("expected a page");
    expect(page.body).toContain(JSON.stringify(ABOUT_JSON_LD));
    expect(page.bytes).toBe(Buffer.byteLength(page.body));
    expect(page.fetchedAt).toBeInstanceOf(Date);
    expect(page.durationMs).toBeGreaterThan(0);
    expect(site.requests.at(-1)?.headers["user-agent"]).toBe("Gleaner/9 test");
  });

  it("names Gleaner in the default user agent", async () => {
    await fetchPage(site.url("/text.txt"), options);
    expect(site.requests.at(-1)?.headers["user-agent"]).toMatch(/^Gleaner\//);
  });

  it("follows a redirect chain with relative Locations and lists every hop", async () => {
    const page = await fetchPage(site.url("/redirect/1"), options);
    expect(page.finalUrl).toBe(site.url("/about.html"));
    expect(page.redirects).toEqual([
      site.url("/redirect/2"),
      site.url("/redirect/3"),
      site.url("/about.html"),
    ]);
  });

  it("stops after maxRedirects hops", async () => {
    const error = await failure(site.url("/loop"), { maxRedirects: 3 });
    expect(error.errorClass).toBe("too_many_redirects");
    expect(site.hits("/loop")).toBeGreaterThanOrEqual(4);
  });

  it("refuses a redirect to the metadata address before any connection is attempted", async () => {
    const before = connectAttempts.length;
    const error = await failure(site.url("/to-metadata"));
    expect(error).toBeInstanceOf(SsrfRefusedError);
    // `url` names the hop that was refused.
    expect(error).toMatchObject({
      address: "169.254.169.254",
      reason: "linkLocal",
      url: METADATA_URL,
    });
    expect(connectAttempts.slice(before)).not.toContain("169.254.169.254");
    // And directly: the guard refuses it with no socket either.
    expect((await failure(METADATA_URL)).errorClass).toBe("ssrf_refused");
    expect(connectAttempts).not.toContain("169.254.169.254");
  });

  it("times out a slow page per request", async () => {
    const started = Date.now();
    const error = await failure(site.url("/slow"), { timeoutMs: 300 });
    expect(error.errorClass).toBe("timeout");
    expect(Date.now() - started).toBeLessThan(3_000);
  });

  it("times out on the total deadline across hops", async () => {
    const error = await failure(site.url("/slow"), { timeoutMs: 4_000, deadlineMs: 300 });
    expect(error.errorClass).toBe("timeout");
    expect(error.message).toMatch(/deadline/);
  });

  it("aborts a huge streamed body at the byte limit", async () => {
    const error = await failure(site.url("/huge"), { maxBytes: 256 * 1024 });
    expect(error.errorClass).toBe("too_large");
    await expect.poll(() => site.huge.aborted).toBe(true);
    expect(site.huge.sent).toBeLessThan(HUGE_BYTES);
  });

  it("refuses a body whose Content-Length is over the limit without reading it", async () => {
    expect((await failure(site.url("/huge-declared"))).errorClass).toBe("too_large");
  });

  it("decodes a windows-1252 page declared in <meta charset>", async () => {
    const page = await fetchPage(site.url("/latin.html"), options);
    if (page.kind !== "page") throw new Error("expected a page");
    expect(page.charset).toBe("windows-1252");
    expect(page.body).toContain("Café");
    expect(page.body).toContain("5 €");
  });

  it("answers not_modified to a conditional request, and sends the validators", async () => {
    const first = await fetchPage(site.url("/cached.html"), options);
    expect(first).toMatchObject({ kind: "page", etag: '"cached-v1"' });
    const byEtag = await fetchPage(site.url("/cached.html"), { ...options, etag: first.etag });
    expect(byEtag).toMatchObject({ kind: "not_modified", status: 304, etag: '"cached-v1"' });
    expect(site.requests.at(-1)?.headers["if-none-match"]).toBe('"cached-v1"');
    const byDate = await fetchPage(site.url("/cached.html"), {
      ...options,
      lastModified: first.lastModified,
    });
    expect(byDate.kind).toBe("not_modified");
  });

  it("classifies 429 with its Retry-After, 500, 404", async () => {
    expect(await failure(site.url("/rate-limited"))).toMatchObject({
      errorClass: "rate_limited",
      status: 429,
      retryAfterMs: 7_000,
    });
    expect(await failure(site.url("/error"))).toMatchObject({
      errorClass: "http_5xx",
      status: 500,
    });
    expect(await failure(site.url("/missing"))).toMatchObject({
      errorClass: "http_4xx",
      status: 404,
    });
  });

  it("accepts text/plain and refuses image/png", async () => {
    const text = await fetchPage(site.url("/text.txt"), options);
    expect(text).toMatchObject({ kind: "page", contentType: "text/plain", body: "plain words\n" });
    expect(await failure(site.url("/image.png"))).toMatchObject({ errorClass: "unsupported_type" });
  });

  it("classifies a refused connection", async () => {
    // A port that was just free: nothing listens on it.
    const closed = await startFixtureSite();
    const url = closed.url("/about.html");
    await closed.close();
    expect((await failure(url)).errorClass).toBe("connection");
  });

  it("keeps the fixture refused without the allow list", async () => {
    const strict = createSsrfGuard();
    try {
      const error = await failure(site.url("/about.html"), {
        guard: strict,
        dispatcher: strict.dispatcher,
      });
      expect(error).toMatchObject({ errorClass: "ssrf_refused", reason: "loopback" });
    } finally {
      await strict.close();
    }
  });
});
