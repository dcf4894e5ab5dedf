/**
 * Page text on real pages (issue 9 §3): the 130 pages of ../shared/corpora/real-pages/
 * (Readability's test pages) served by a loopback server in a child process, read through the
 * crawl's page reader exactly as the crawl stage reads a fetched page (createCrawler: SSRF guard,
 * fetch-page, charset decoding, extractPageContent for the main text as Markdown, links and
 * structured data, then the one page-cache write to PostgreSQL). Each page is extracted once: the
 * reader's own extraction is what is measured and scored.
 *
 * Printed:
 * - text recall: the share of expected.html's word tokens (a multiset) found in the Markdown's
 *   text, per page, averaged; and the same excluding pages cut at the Markdown cap;
 * - precision: the share of the Markdown's tokens that are in expected.html (what is not is
 *   navigation, share buttons, related lists… or text Readability also dropped);
 * - metadata found: title, site name, published time and byline equal to expected-metadata.json
 *   (over the pages where it is not null);
 * - speed: pages/s over the whole path at the given concurrency, and CPU ms per page of this
 *   process (fetch, parse, extraction, cache write; the server and PostgreSQL run elsewhere),
 *   beside a plain fetch loop over the same pages in the same run (fetch-page alone: what the
 *   path costs before any extraction).
 *
 *   node --import tsx bench/page-text.ts [passes=3] [concurrency=4] [corpus=../shared/corpora/real-pages]
 */
import { spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { createCrawler } from "../src/crawl/crawler.ts";
import { collapseWhitespace, parseHtmlDocument } from "../src/crawl/extract-dom.ts";
import { fetchPage } from "../src/crawl/fetch-page.ts";
import { extractPageContent } from "../src/crawl/page-content.ts";
import type { ReadPage } from "../src/crawl/page-reader.ts";
import { createSsrfGuard } from "../src/crawl/ssrf-guard.ts";
import { parseConfig } from "../src/config/load-config.ts";
import { connectDatabase } from "../src/db/connect-database.ts";
import { migrate } from "../src/db/migrate.ts";
import { MINIMAL_CONFIG_YAML } from "../test/support/minimal-config.ts";
import { createBenchDatabase, fmt } from "./support/bench-database.ts";

const passes = Number(process.argv[2] ?? 3);
const concurrency = Number(process.argv[3] ?? 4);
// Beside the checkout; a git worktree one folder deeper finds it one level up.
const corpus =
  process.argv[4] !== undefined
    ? resolve(process.argv[4])
    : ["../shared/corpora/real-pages", "../../shared/corpora/real-pages"]
        .map((p) => resolve(p))
        .find((p) => existsSync(p));
if (corpus === undefined) {
  throw new Error(
    "../shared/corpora/real-pages/ is not there: give the corpus folder as argument 3",
  );
}
const names = readdirSync(corpus, { withFileTypes: true })
  .filter((e) => e.isDirectory())
  .map((e) => e.name)
  .sort();

interface ExpectedMetadata {
  title: string | null;
  byline: string | null;
  siteName: string | null;
  publishedTime: string | null;
}

// The server runs in a child process so that its CPU is not counted as the crawl's.
const serverSource = `
const http = require("node:http"), fs = require("node:fs"), path = require("node:path");
const root = ${JSON.stringify(corpus)};
const server = http.createServer((req, res) => {
  const name = decodeURIComponent(req.url.split("/")[1] ?? "");
  if (req.url === "/robots.txt" || !/^[\\w.-]+$/.test(name)) { res.writeHead(404).end(); return; }
  fs.readFile(path.join(root, name, "source.html"), (error, body) => {
    if (error) { res.writeHead(404).end(); return; }
    res.writeHead(200, { "content-type": "text/html", "content-length": body.length }).end(body);
  });
});
// Idle sockets outlive the client's: on a loaded machine a socket the server closed after its
// default 5 s would be reused and fail as UND_ERR_SOCKET.
server.keepAliveTimeout = 120000;
server.listen(0, "127.0.0.1", () => console.log(server.address().port));
`;
const server = spawn(process.execPath, ["-e", serverSource], {
  stdio: ["ignore", "pipe", "inherit"],
});
// An error anywhere must not leave the server running.
process.on("exit", () => server.kill());
const port = await new Promise<number>((done) =>
  server.stdout.once("data", (chunk: Buffer) => done(Number(chunk.toString().trim()))),
);

const bench = await createBenchDatabase("page_text");
const config = parseConfig(MINIMAL_CONFIG_YAML, { env: { DATABASE_URL: bench.url } });
const database = await connectDatabase(config, { env: { DATABASE_URL: bench.url } });
await migrate(database, config);

const crawler = createCrawler({
  allow: ["127.0.0.1/32"],
  perHostConcurrency: concurrency,
  perHostDelayMs: 0,
  // ttl 0: every read fetches and extracts again, and still writes the page to the cache.
  cacheTtlMs: 0,
  cache: { db: database.db, schema: config.schema },
  robots: { enabled: false },
});
const pageUrl = (name: string) => `http://127.0.0.1:${port}/${name}/`;
const readPage = (name: string): Promise<ReadPage> => crawler.fetch(pageUrl(name));

// The baseline: the same fetches without extraction or cache write.
const guard = createSsrfGuard({ allow: ["127.0.0.1/32"] }, { connections: concurrency });
async function fetchOnly(name: string): Promise<void> {
  const outcome = await fetchPage(pageUrl(name), { dispatcher: guard.dispatcher, guard });
  if (outcome.kind !== "page" || outcome.body.length === 0) throw new Error(`${name}: no page`);
}

// Chinese and Japanese are written without spaces: each of their characters is a token.
const tokens = (text: string) =>
  text
    .toLowerCase()
    .match(
      /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}]|(?:(?![\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}])[\p{L}\p{N}])+/gu,
    ) ?? [];
/** The Markdown's reading text: link targets and Markdown marks are not words of the page. */
const markdownText = (markdown: string) =>
  markdown.replace(/\]\([^)]*\)/g, "]").replace(/[#*_`>|[\]-]+/g, " ");

function overlap(expected: string[], got: string[]): number {
  const counts = new Map<string, number>();
  for (const t of expected) counts.set(t, (counts.get(t) ?? 0) + 1);
  let common = 0;
  for (const t of got) {
    const n = counts.get(t) ?? 0;
    if (n > 0) {
      common++;
      counts.set(t, n - 1);
    }
  }
  return common;
}

const same = (a: string | undefined, b: string | null) =>
  b !== null && collapseWhitespace(a).toLowerCase() === collapseWhitespace(b).toLowerCase();

// Quality, from one pass.
let recallSum = 0;
let recallUncutSum = 0;
let uncut = 0;
let precisionSum = 0;
let markdownChars = 0;
let truncated = 0;
const sources = { article: 0, body: 0 };
const meta = { title: [0, 0], siteName: [0, 0], publishedTime: [0, 0], byline: [0, 0] };
const worst: Array<[string, number]> = [];
for (const name of names) {
  const page = await readPage(name);
  // The reader stores no metadata: it is read again here, outside the timed passes.
  const content = extractPageContent(page.body, page.finalUrl);
  if (content.markdown !== page.content.markdown) {
    throw new Error(`${name}: the reader's Markdown differs from extractPageContent's`);
  }
  sources[content.source]++;
  if (content.truncated) truncated++;
  const expectedTokens = tokens(
    parseHtmlDocument(readFileSync(join(corpus, name, "expected.html"), "utf8")).documentElement
      ?.textContent ?? "",
  );
  const gotTokens = tokens(markdownText(content.markdown));
  const common = overlap(expectedTokens, gotTokens);
  const recall = expectedTokens.length === 0 ? 1 : common / expectedTokens.length;
  recallSum += recall;
  if (!content.truncated) {
    recallUncutSum += recall;
    uncut++;
  }
  precisionSum += gotTokens.length === 0 ? 0 : common / gotTokens.length;
  markdownChars += content.markdown.length;
  worst.push([name, recall]);
  const expected = JSON.parse(
    readFileSync(join(corpus, name, "expected-metadata.json"), "utf8"),
  ) as ExpectedMetadata;
  for (const key of Object.keys(meta) as Array<keyof typeof meta>) {
    if (expected[key] === null) continue;
    meta[key][1]!++;
    const found = key === "title" ? content.metadata.title : content.metadata[key];
    if (same(found, expected[key])) meta[key][0]!++;
  }
}
const n = names.length;
console.log(
  `${n} real pages from ${corpus}: ${sources.article} read as an article, ${sources.body} as the body without boilerplate, ${truncated} cut at the Markdown cap`,
);
console.log(
  `text recall ${fmt(recallSum / n, 4)} (${fmt(recallUncutSum / uncut, 4)} over the ${uncut} pages not cut at the Markdown cap), precision ${fmt(precisionSum / n, 4)}, ${fmt(markdownChars / n)} Markdown characters a page`,
);
console.log(
  `lowest recall: ${worst
    .sort((a, b) => a[1] - b[1])
    .slice(0, 5)
    .map(([p, r]) => `${p} ${fmt(r, 3)}`)
    .join(", ")}`,
);
console.log(
  `metadata equal to Readability's: ${Object.entries(meta)
    .map(([k, [ok, of]]) => `${k} ${ok}/${of}`)
    .join(", ")}`,
);

// Speed: every page `passes` times, `concurrency` at a time; the fetch loop first, then the path.
async function timed(read: (name: string) => Promise<unknown>) {
  const total = n * passes;
  let next = 0;
  const cpuStart = process.cpuUsage();
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) await read(names[next++ % n]!);
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuStart);
  return {
    total,
    pagesPerSecond: total / seconds,
    cpuMs: (cpu.user + cpu.system) / 1000 / total,
  };
}
const fetchLoop = await timed(fetchOnly);
const path = await timed(readPage);
console.log(
  `speed: ${fmt(path.pagesPerSecond, 1)} pages/s, ${fmt(path.cpuMs, 1)} CPU ms a page (fetch + extraction + cache write; ${path.total} pages, concurrency ${concurrency})`,
);
console.log(
  `baseline, same run: a plain fetch loop over the same pages: ${fmt(fetchLoop.pagesPerSecond, 1)} pages/s, ${fmt(fetchLoop.cpuMs, 1)} CPU ms a page; extraction + cache write add ${fmt(path.cpuMs - fetchLoop.cpuMs, 1)} CPU ms a page`,
);
console.log("aims of issue 9: ≥ 50 pages/s or ≤ 40 CPU ms a page, text recall ≥ 0.98");

await crawler.close();
await guard.close();
await database.close();
await bench.drop();
server.kill();
