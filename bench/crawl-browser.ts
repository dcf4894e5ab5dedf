/**
 * Pages/s through the crawler's browser path (src/crawl/browser-pool.ts: one Chromium, pooled
 * contexts, route + guarded proxy, images/fonts/media blocked) rendering the fixture site's
 * JavaScript page (/browser/js/<n>: an empty root filled by a script from fetched JSON), against
 * a one-page-at-a-time Playwright baseline (launch, goto, close per page) in the same run.
 * Every rendered page is checked for the script-inserted text. Issue 3 asks for ≥ 20 pages/s on
 * 2 cores on the browser path.
 *
 *   node --import tsx bench/crawl-browser.ts [pages=300] [poolSize=4] [baselinePages=20]
 */
import { availableParallelism } from "node:os";
import { chromium } from "playwright-core";
import { createBrowserPool, DEFAULT_CHROMIUM_ARGS } from "../src/crawl/browser-pool.ts";
import { jsItemText, startFixtureSite } from "../test/support/fixture-site.ts";

const pages = Number(process.argv[2] ?? 300);
const poolSize = Number(process.argv[3] ?? 4);
const baselinePages = Number(process.argv[4] ?? 20);
const executablePath = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

/** Runs `fn` over 0..n-1 with `inFlight` calls at a time; returns pages/s. */
async function measure(n: number, inFlight: number, fn: (i: number) => Promise<void>) {
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < n) await fn(next++);
    }),
  );
  return n / ((performance.now() - started) / 1000);
}

function check(html: string, n: number, who: string): void {
  if (!html.includes(jsItemText(n))) throw new Error(`${who}: page ${n} lacks its script text`);
}

const site = await startFixtureSite();
const pool = createBrowserPool({
  size: poolSize,
  executablePath,
  allow: ["127.0.0.1/32"],
  timeoutMs: 10_000,
});
try {
  // Warm up: the launch, every context, the JIT; on pages outside the measured range.
  await Promise.all(
    Array.from({ length: poolSize * 2 }, (_, i) =>
      pool.render(site.url(`/browser/js/${100_000 + i}`)),
    ),
  );
  const durations: number[] = [];
  let blocked = 0;
  const pooled = await measure(pages, poolSize, async (i) => {
    const page = await pool.render(site.url(`/browser/js/${i}`));
    check(page.html, i, "pool");
    durations.push(page.durationMs);
    blocked += page.refusedRequests.length;
  });
  if (blocked > 0) throw new Error(`pool: ${blocked} requests refused on the loopback site`);
  const stats = pool.stats();

  // The baseline: what a script doing the obvious thing gets, one page at a time.
  const baseline = await measure(baselinePages, 1, async (i) => {
    const browser = await chromium.launch({ executablePath, args: [...DEFAULT_CHROMIUM_ARGS] });
    try {
      const page = await browser.newPage();
      const n = 200_000 + i;
      // The least a plain script must wait for: the document, then the inserted text.
      await page.goto(site.url(`/browser/js/${n}`), { waitUntil: "domcontentloaded" });
      await page.waitForSelector("#root p");
      check(await page.content(), n, "baseline");
    } finally {
      await browser.close();
    }
  });

  durations.sort((a, b) => a - b);
  const pct = (p: number) =>
    durations[Math.min(durations.length - 1, Math.floor(p * durations.length))] ?? 0;
  console.log(
    `cores: ${availableParallelism()}; page: /browser/js/<n> (HTML shell + script + JSON fetch), distinct URLs`,
  );
  console.log(
    `baseline, one page at a time (launch, goto, wait for #root p, close), ${baselinePages} pages: ${baseline.toFixed(2)} pages/s`,
  );
  console.log(
    `browser pool, ${poolSize} contexts, ${poolSize} in flight, ${pages} pages: ${pooled.toFixed(1)} pages/s` +
      ` (render p50 ${pct(0.5).toFixed(0)} ms, p95 ${pct(0.95).toFixed(0)} ms;` +
      ` ${stats.launches} launch, ${stats.contextsCreated} contexts for ${stats.renders} renders)`,
  );
  console.log(`ratio pool/baseline: ${(pooled / baseline).toFixed(1)} (aim: pool ≥ 20 pages/s)`);
} finally {
  await pool.close();
  await site.close();
}
