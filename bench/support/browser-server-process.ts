// A Playwright browser server, as a browser farm runs one: Debian's Chromium launched with the
// flags Gleaner launches it with (chromiumLaunchOptions), listening on `host`, printing its
// wsEndpoint (the value of crawl.browser.endpoint) on stdout, and running until stdin closes.
//   node --import tsx bench/support/browser-server-process.ts [executablePath] [host=127.0.0.1]
import { chromium } from "playwright-core";
import { chromiumLaunchOptions, defaultChromiumPath } from "../../src/crawl/browser-pool.ts";

const executablePath = process.argv[2] ?? process.env.CHROMIUM_PATH ?? defaultChromiumPath();
const host = process.argv[3] ?? "127.0.0.1";
const server = await chromium.launchServer({ ...chromiumLaunchOptions(executablePath), host });
process.stdout.write(`${server.wsEndpoint()}\n`);
process.stdin.resume();
process.stdin.on("end", () => void server.close().then(() => process.exit(0)));
