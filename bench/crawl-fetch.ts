/**
 * Pages/s through the crawler's fetch path (SSRF guard, robots, politeness, fetch-page) from the
 * loopback fixture site, against a plain `undici.request` loop over the same pages in the same
 * run. Cache off; the single loopback host's politeness raised to the driver's concurrency.
 * Issue 3 asks for ≥ 200 pages/s on the fetch path.
 *
 *   node --import tsx bench/crawl-fetch.ts [pages=2000] [concurrency=16]
 */
import { Agent, request } from "undici";
import { createCrawler } from "../src/crawl/crawler.ts";
import { startFixtureSite } from "../test/support/fixture-site.ts";

const pages = Number(process.argv[2] ?? 2000);
const concurrency = Number(process.argv[3] ?? 16);

/** Runs `fn` over 0..n-1 with `inFlight` calls at a time; returns pages/s. */
async function measure(
  n: number,
  fn: (i: number) => Promise<void>,
  inFlight = concurrency,
): Promise<number> {
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < n) await fn(next++);
    }),
  );
  return n / ((performance.now() - started) / 1000);
}

const site = await startFixtureSite();
const baselineAgent = new Agent({ connections: concurrency });
const crawler = createCrawler({
  allow: ["127.0.0.1/32"],
  perHostConcurrency: concurrency,
  perHostDelayMs: 0,
  cacheTtlMs: 0,
  timeoutMs: 10_000,
});
try {
  // Warm both paths (JIT, keep-alive sockets, robots.txt) on pages outside the measured range.
  for (let i = 0; i < 50; i++) {
    await crawler.fetch(site.url(`/page/${pages + i}`));
    await (
      await request(site.url(`/page/${pages + i}`), { dispatcher: baselineAgent })
    ).body.text();
  }
  const baseline = await measure(pages, async (i) => {
    const response = await request(site.url(`/page/${i}`), { dispatcher: baselineAgent });
    if (response.statusCode !== 200) throw new Error(`baseline: page ${i}: ${response.statusCode}`);
    await response.body.text();
  });
  const crawled = await measure(pages, async (i) => {
    const page = await crawler.fetch(site.url(`/page/${1_000_000 + i}`));
    if (page.status !== 200) throw new Error(`crawler: page ${i}: ${page.status}`);
  });
  // The real-world shape: default politeness (2 per host, 500 ms apart) over many hosts. Names
  // h<k>.test resolve to loopback through an injected resolver (no real DNS), each with its own
  // robots.txt fetch; the per-host delay, not the code, bounds this figure.
  const hosts = 400;
  const manyHosts = createCrawler({
    allow: ["*.test"],
    resolver: () => Promise.resolve([{ address: "127.0.0.1", family: 4 }]),
    cacheTtlMs: 0,
    timeoutMs: 10_000,
  });
  let spread: number;
  try {
    spread = await measure(
      pages,
      async (i) => {
        const page = await manyHosts.fetch(`http://h${i % hosts}.test:${site.port}/page/${i}`);
        if (page.status !== 200) throw new Error(`crawler: page ${i}: ${page.status}`);
      },
      hosts * 2,
    );
  } finally {
    await manyHosts.close();
  }
  console.log(
    `pages: ${pages} distinct small HTML pages, ${concurrency} in flight, one loopback host`,
  );
  console.log(`baseline undici.request loop: ${baseline.toFixed(0)} pages/s`);
  console.log(
    `crawler.fetch (guard + robots + politeness + fetch-page): ${crawled.toFixed(0)} pages/s`,
  );
  console.log(
    `crawler.fetch, default politeness (2/host, 500 ms apart), ${hosts} hosts by injected DNS, robots.txt each: ${spread.toFixed(0)} pages/s`,
  );
  console.log(
    `ratio crawler/baseline: ${(crawled / baseline).toFixed(2)} (aim: crawler ≥ 200 pages/s)`,
  );
} finally {
  await crawler.close();
  await baselineAgent.close();
  await site.close();
}
