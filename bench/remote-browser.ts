/**
 * Pages/s of the browser pool with a local Chromium against the same pool connected to a
 * Playwright browser server (`crawl.browser.endpoint`) run by another process on loopback
 * (bench/support/browser-server-process.ts), in one run, on the fixture site's JavaScript page.
 * Every request of both goes through the guarded proxies of this process. On one machine the
 * remote figure shows what the extra hop costs; on a browser farm the renders' CPU moves off the
 * worker, which is the point.
 *
 *   node --import tsx bench/remote-browser.ts [pages=200] [poolSize=6]
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { createBrowserPool, defaultChromiumPath } from "../src/crawl/browser-pool.ts";
import { jsItemText, startFixtureSite } from "../test/support/fixture-site.ts";

const pages = Number(process.argv[2] ?? 200);
const poolSize = Number(process.argv[3] ?? 6);
const executablePath = process.env.CHROMIUM_PATH ?? defaultChromiumPath();

const site = await startFixtureSite();

async function pagesPerSecond(
  label: string,
  endpoint: string | undefined,
  warmFrom: number,
): Promise<number> {
  const pool = createBrowserPool({
    size: poolSize,
    executablePath,
    ...(endpoint ? { endpoint } : {}),
    allow: ["127.0.0.1/32"],
    timeoutMs: 15_000,
  });
  try {
    // Warm up: the launch or connection, every context, the JIT; pages outside the measured range.
    await Promise.all(
      Array.from({ length: poolSize * 2 }, (_, i) =>
        pool.render(site.url(`/browser/js/${warmFrom + i}`)),
      ),
    );
    let next = 0;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: poolSize }, async () => {
        while (next < pages) {
          const n = next++;
          const page = await pool.render(site.url(`/browser/js/${n}`));
          if (!page.html.includes(jsItemText(n)))
            throw new Error(`${label}: page ${n} not rendered`);
          if (page.refusedRequests.length > 0) throw new Error(`${label}: requests refused`);
        }
      }),
    );
    return pages / ((performance.now() - started) / 1000);
  } finally {
    await pool.close();
  }
}

const server = spawn(
  process.execPath,
  [
    "--import",
    "tsx",
    fileURLToPath(new URL("./support/browser-server-process.ts", import.meta.url)),
    executablePath,
  ],
  { stdio: ["pipe", "pipe", "inherit"] },
);
try {
  const [first] = (await once(server.stdout, "data")) as [Buffer];
  const endpoint = first.toString().trim();
  const local = await pagesPerSecond("local", undefined, 100_000);
  const remote = await pagesPerSecond("remote", endpoint, 200_000);
  console.log(
    `Chromium: ${executablePath}; ${poolSize} contexts, ${poolSize} in flight, ${pages} pages each`,
  );
  console.log(`local browser (launched here)          ${local.toFixed(1)} pages/s`);
  console.log(`remote browser server (other process)  ${remote.toFixed(1)} pages/s`);
  console.log(`remote / local                         ${(remote / local).toFixed(2)}`);
} finally {
  server.stdin.end();
  await once(server, "exit");
  await site.close();
}
