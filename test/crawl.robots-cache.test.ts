import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CrawlError, SsrfRefusedError } from "../src/crawl/crawl-error.ts";
import { fetchPage } from "../src/crawl/fetch-page.ts";
import {
  createRobotsCache,
  productToken,
  type FetchRobotsText,
} from "../src/crawl/robots-cache.ts";
import { createSsrfGuard, type SsrfGuard } from "../src/crawl/ssrf-guard.ts";
import { startFixtureSite, type FixtureSite } from "./support/fixture-site.ts";

/**
 * robots.txt rules through the guarded fetch against the fixture site, and Google's handling of
 * missing (4xx → allow) and failing (5xx / unreachable → disallow for a while) files, with a
 * fake clock for the TTLs.
 */

let site: FixtureSite;
let guard: SsrfGuard;
let fetchText: FetchRobotsText;

beforeAll(async () => {
  site = await startFixtureSite();
  guard = createSsrfGuard({ allow: ["127.0.0.1/32"] });
  fetchText = async (url) => {
    const outcome = await fetchPage(url, { dispatcher: guard.dispatcher, guard, timeoutMs: 2_000 });
    return outcome.kind === "page" ? outcome.body : "";
  };
});
afterAll(async () => {
  await guard.close();
  await site.close();
});

function clock(start = 1_000_000) {
  const c = { t: start, now: () => c.t };
  return c;
}

describe("robots cache", () => {
  it("obeys Disallow for /private/, fetching robots.txt once per origin, concurrent checks included", async () => {
    site.setRobots("User-agent: *\nDisallow: /private/\n");
    const before = site.hits("/robots.txt");
    const robots = createRobotsCache({ fetchText });
    const verdicts = await Promise.all([
      robots.isAllowed(site.url("/about.html")),
      robots.isAllowed(site.url("/private/secret.html")),
      robots.isAllowed(site.url("/private/other")),
    ]);
    expect(verdicts).toEqual([true, false, false]);
    expect(await robots.check(site.url("/about.html"))).toEqual({ allowed: true, source: "rules" });
    expect(site.hits("/robots.txt") - before).toBe(1);
    expect(robots.size).toBe(1);
  });

  it("matches the group of our user agent's product token and reads its crawl-delay", async () => {
    site.setRobots(
      "User-agent: *\nDisallow: /\n\nUser-agent: gleaner\nCrawl-delay: 2\nDisallow: /private/\n",
    );
    const ours = createRobotsCache({ fetchText, userAgent: "Gleaner/1.2 (+https://example.test)" });
    expect(await ours.isAllowed(site.url("/about.html"))).toBe(true);
    expect(await ours.isAllowed(site.url("/private/x"))).toBe(false);
    expect(await ours.crawlDelayMs(site.url("/about.html"))).toBe(2_000);
    const other = createRobotsCache({ fetchText, userAgent: "OtherBot/1.0" });
    expect(await other.isAllowed(site.url("/about.html"))).toBe(false);
    expect(productToken("Gleaner/0.1 (+x)")).toBe("gleaner");
  });

  it("refetches after the TTL", async () => {
    site.setRobots("User-agent: *\nDisallow: /a\n");
    const c = clock();
    const robots = createRobotsCache({ fetchText, ttlMs: 60_000, now: c.now });
    expect(await robots.isAllowed(site.url("/a"))).toBe(false);
    site.setRobots("User-agent: *\nDisallow: /b\n");
    c.t += 59_000;
    expect(await robots.isAllowed(site.url("/a"))).toBe(false);
    c.t += 2_000;
    expect(await robots.isAllowed(site.url("/a"))).toBe(true);
    expect(await robots.isAllowed(site.url("/b"))).toBe(false);
  });

  it("treats a 404 robots.txt as allow all", async () => {
    site.setRobots(null, 404);
    const robots = createRobotsCache({ fetchText });
    expect(await robots.check(site.url("/private/x"))).toEqual({
      allowed: true,
      source: "no robots.txt",
    });
  });

  it("disallows everything for a short while when robots.txt answers 5xx, then asks again", async () => {
    site.setRobots(null, 503);
    const c = clock();
    const robots = createRobotsCache({ fetchText, unreachableTtlMs: 10_000, now: c.now });
    expect(await robots.check(site.url("/about.html"))).toEqual({
      allowed: false,
      source: "unreachable",
    });
    site.setRobots("User-agent: *\nDisallow:\n");
    c.t += 5_000;
    expect(await robots.isAllowed(site.url("/about.html"))).toBe(false);
    c.t += 6_000;
    expect(await robots.isAllowed(site.url("/about.html"))).toBe(true);
  });

  it("disallows an unreachable host", async () => {
    const down = await startFixtureSite();
    const url = down.url("/about.html");
    await down.close();
    const robots = createRobotsCache({ fetchText });
    expect(await robots.check(url)).toMatchObject({ allowed: false, source: "unreachable" });
  });

  it("passes an SSRF refusal through instead of calling it unreachable", async () => {
    const robots = createRobotsCache({ fetchText });
    await expect(robots.isAllowed("http://10.0.0.1/x")).rejects.toBeInstanceOf(SsrfRefusedError);
  });

  it("lets a non-crawl error (a bug) through", async () => {
    const robots = createRobotsCache({
      fetchText: () => Promise.reject(new TypeError("bug")),
    });
    await expect(robots.isAllowed(site.url("/"))).rejects.toThrow(TypeError);
    const crawlFailure = createRobotsCache({
      fetchText: (url) => Promise.reject(new CrawlError("timeout", "slow", { url })),
    });
    expect(await crawlFailure.isAllowed(site.url("/"))).toBe(false);
  });
});
