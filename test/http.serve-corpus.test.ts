import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { createServer, request, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Registry } from "prom-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { GleanerConfig } from "../src/config/config-types.ts";
import { parseConfig } from "../src/config/load-config.ts";
import { CrawlError, SsrfRefusedError } from "../src/crawl/crawl-error.ts";
import { createCrawler, type Crawler } from "../src/crawl/crawler.ts";
import { connectDatabase, type Database } from "../src/db/connect-database.ts";
import { migrate, type MigrateReport } from "../src/db/migrate.ts";
import { serveCorpus } from "../src/http/serve-corpus.ts";
import { startHttpServer } from "../src/http/start-http-server.ts";
import { ownCorpusPrefixes, servedCorpora } from "../src/search/corpus-folders.ts";
import { createTestDatabase, type TestDatabase } from "./support/test-database.ts";

/**
 * A `local` search provider with a `folder`: `migrate` indexes the folder under the URL
 * Gleaner's HTTP port serves it at, the port serves exactly the indexed kinds of file from
 * inside the folder, and the crawler may fetch that origin (and no other loopback port).
 */

const root = mkdtempSync(join(tmpdir(), "gleaner-serve-corpus-"));
const folder = join(root, "docs");

const ABOUT_HTML =
  "<html><head><title>About Acme</title></head><body><p>Acme makes rockets.</p></body></html>";
const NOTES_MD = "# Acme notes\n\nFounded in 1950 in Springfield.\n";
const FACTS_TXT = "Acme facts\n\nAcme has 120 employees.\n";

let testDb: TestDatabase;
let database: Database;
let config: GleanerConfig;
let http: Awaited<ReturnType<typeof startHttpServer>>;
let report: MigrateReport;
let base: string;
let port: number;

function writeFile(relative: string, text: string): void {
  const file = join(folder, relative);
  mkdirSync(join(file, ".."), { recursive: true });
  writeFileSync(file, text);
}

/** A port nobody listens on right now, so the config can name it before the server starts. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port: found } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return found;
}

/** GET with the path sent exactly as written: no client-side `..` folding or re-encoding. */
function rawGet(
  path: string,
  at = port,
): Promise<{ status: number; type: string | undefined; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port: at, path, method: "GET" }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (body += chunk));
      res.on("end", () =>
        resolve({ status: res.statusCode ?? 0, type: res.headers["content-type"], body }),
      );
    });
    req.setTimeout(5_000, () => req.destroy(new Error(`no answer to GET ${path}`)));
    req.on("error", reject);
    req.end();
  });
}

beforeAll(async () => {
  writeFile("about.html", ABOUT_HTML);
  writeFile("notes.md", NOTES_MD);
  writeFile("facts.txt", FACTS_TXT);
  writeFile(
    "team/index.html",
    "<html><head><title>Team</title></head><body><p>Wile E.</p></body></html>",
  );
  writeFile("long notes.markdown", "# Long notes\n\nAcme ships worldwide.\n");
  writeFile("data.json", '{"secret": true}');
  writeFile(".hidden.txt", "hidden words the index skipped");
  writeFileSync(join(root, "outside.txt"), "outside the corpus folder");
  mkdirSync(join(root, "docs-sibling"));
  writeFileSync(join(root, "docs-sibling", "twin.txt"), "a sibling folder sharing the prefix");
  symlinkSync(join(root, "outside.txt"), join(folder, "link.txt"));

  port = await freePort();
  testDb = await createTestDatabase("http_serve_corpus");
  config = parseConfig(
    JSON.stringify({
      http: { host: "127.0.0.1", port },
      llm: { backends: [{ name: "primary", base_url: "http://127.0.0.1:9/v1", model: "fake" }] },
      search: { providers: { docs: { provider: "local", folder: "docs" } } },
      pipelines: {
        orgs: {
          table: "orgs",
          inputs: ["name"],
          outputs: { city: { type: "text", description: "the city" } },
          stages: [
            {
              name: "fill",
              kind: "llm",
              backends: ["primary"],
              prompt: "{{name}}",
              outputs: ["city"],
            },
          ],
        },
      },
    }),
    { file: join(root, "gleaner.yaml"), env: { DATABASE_URL: testDb.url } },
  );
  database = await connectDatabase(config, { env: { DATABASE_URL: testDb.url }, poolSize: 4 });
  report = await migrate(database, config);
  base = `http://127.0.0.1:${port}/corpus/docs/`;
  http = await startHttpServer({
    host: "127.0.0.1",
    port,
    registry: new Registry(),
    database,
    schema: config.schema,
    corpora: servedCorpora(config),
  });
});

afterAll(async () => {
  await http?.close();
  await database?.close();
  if (database && !database.pool.ended) await database.pool.end();
  await testDb?.drop();
  rmSync(root, { recursive: true, force: true });
});

describe("migrate indexes a local provider's folder", () => {
  it("stores each document under the URL the HTTP port serves it at", async () => {
    expect(servedCorpora(config)).toEqual([
      { provider: "docs", corpus: "docs", folder, baseUrl: base },
    ]);
    // Five supported files; data.json, the hidden file and the symlink are not indexed.
    expect(report.corpora).toEqual([{ provider: "docs", documents: 5, changed: 5 }]);
    const { rows } = await database.pool.query<{ url: string; title: string }>(
      "select url, title from gleaner.search_documents where corpus = 'docs' order by url",
    );
    expect(rows.map((r) => r.url).sort()).toEqual([
      `${base}about.html`,
      `${base}facts.txt`,
      `${base}long%20notes.markdown`,
      `${base}notes.md`,
      `${base}team/index.html`,
    ]);
    expect(rows.find((r) => r.url.endsWith("about.html"))?.title).toBe("About Acme");
  });

  it("re-indexes nothing on a second migrate when no file changed", async () => {
    const again = await migrate(database, config);
    expect(again.corpora).toEqual([{ provider: "docs", documents: 5, changed: 0 }]);
  });
});

describe("the HTTP port serves the corpus folder", () => {
  it("serves .html, .md and .txt files with their content type", async () => {
    const cases: Array<[string, string, string]> = [
      ["about.html", "text/html; charset=utf-8", ABOUT_HTML],
      ["notes.md", "text/markdown; charset=utf-8", NOTES_MD],
      ["facts.txt", "text/plain; charset=utf-8", FACTS_TXT],
    ];
    for (const [file, type, body] of cases) {
      const answer = await rawGet(`/corpus/docs/${file}`);
      expect({ file, ...answer }).toEqual({ file, status: 200, type, body });
    }
  });

  it("serves a folder's index.html for a path ending in /", async () => {
    const answer = await rawGet("/corpus/docs/team/");
    expect(answer.status).toBe(200);
    expect(answer.body).toContain("Wile E.");
  });

  it("serves every document the index holds, at the URL the index stores", async () => {
    const { rows } = await database.pool.query<{ url: string }>(
      "select url from gleaner.search_documents where corpus = 'docs' order by url",
    );
    expect(rows.length).toBeGreaterThan(0);
    for (const { url } of rows) {
      const answer = await rawGet(new URL(url).pathname);
      expect({ url, status: answer.status }).toEqual({ url, status: 200 });
    }
  });

  it("refuses `..` and encoded traversal out of the folder with 400, before any file is looked up", async () => {
    for (const path of [
      "/corpus/docs/../outside.txt",
      "/corpus/docs/%2e%2e/outside.txt",
      "/corpus/docs/..%2foutside.txt",
      "/corpus/docs/%2E%2E%2Foutside.txt",
      "/corpus/docs/team/..%2f..%2foutside.txt",
      "/corpus/docs/..%2fdocs-sibling%2ftwin.txt",
      `/corpus/docs/${encodeURIComponent(join(root, "outside.txt"))}`,
    ]) {
      const answer = await rawGet(path);
      expect({ path, status: answer.status }).toEqual({ path, status: 400 });
      expect(answer.body).toMatch(/^bad request: the path/);
      expect(answer.body).not.toContain("outside the corpus folder");
      expect(answer.body).not.toContain("sibling folder sharing");
    }
  });

  it("refuses files of other types, unknown providers and missing files with 404", async () => {
    for (const path of [
      "/corpus/docs/data.json",
      "/corpus/other/about.html",
      "/corpus/docs/missing.html",
      "/corpus/docs/team",
    ]) {
      const answer = await rawGet(path);
      expect({ path, status: answer.status }).toEqual({ path, status: 404 });
      expect(answer.body).not.toContain("secret");
    }
  });

  it("does not serve hidden files, which the index skips", async () => {
    const answer = await rawGet("/corpus/docs/.hidden.txt");
    expect(answer.status).toBe(404);
    expect(answer.body).not.toContain("hidden words");
  });

  it("does not follow a symlink in the folder to a file outside it", async () => {
    const answer = await rawGet("/corpus/docs/link.txt");
    expect(answer.status).toBe(404);
    expect(answer.body).not.toContain("outside the corpus folder");
  });

  it("answers 404, not an exception that would crash the process, to a malformed percent-encoding", async () => {
    // serveCorpus runs inside the HTTP server's request listener, where a throw is an uncaught
    // exception that ends the process. A plain server around it records what it throws instead.
    const corpora = servedCorpora(config);
    const thrown: string[] = [];
    const server: Server = createServer((req, res) => {
      try {
        if (!serveCorpus(corpora, (req.url ?? "/").split("?")[0] ?? "/", res)) {
          res.writeHead(418);
          res.end();
        }
      } catch (error) {
        thrown.push(`${req.url}: ${(error as Error).message}`);
        res.writeHead(500);
        res.end();
      }
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port: at } = server.address() as AddressInfo;
    try {
      for (const path of ["/corpus/docs/%E0%A4%A.html", "/corpus/%E0%A4%A/about.html"]) {
        const answer = await rawGet(path, at);
        expect({ path, status: answer.status }).toEqual({ path, status: 404 });
      }
      expect(thrown).toEqual([]);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});

describe("the crawler and Gleaner's own corpus origin", () => {
  let crawler: Crawler;
  let other: Server;
  let otherHits = 0;

  beforeAll(async () => {
    crawler = createCrawler({ allowPrefixes: ownCorpusPrefixes(config), perHostDelayMs: 0 });
    other = createServer((_req, res) => {
      otherHits++;
      res.writeHead(200, { "content-type": "text/html" });
      res.end("<p>another loopback service</p>");
    });
    await new Promise<void>((resolve) => other.listen(0, "127.0.0.1", resolve));
  });

  afterAll(async () => {
    await crawler?.close();
    await new Promise<void>((resolve) => other.close(() => resolve()));
  });

  it("lets exactly the corpus folder through the SSRF guard, not the rest of the port", () => {
    expect(config.crawl.allow).toEqual([]);
    expect(ownCorpusPrefixes(config)).toEqual([base]);
  });

  it("fetches a corpus URL although 127.0.0.1 is not in crawl.allow", async () => {
    const page = await crawler.fetch(`${base}about.html`);
    expect(page.status).toBe(200);
    expect(page.contentType).toMatch(/^text\/html/);
    expect(page.body).toBe(ABOUT_HTML);
    expect(page.finalUrl).toBe(`${base}about.html`);
  });

  it("still refuses another port on 127.0.0.1, without connecting to it", async () => {
    const { port: otherPort } = other.address() as AddressInfo;
    const error = await crawler.fetch(`http://127.0.0.1:${otherPort}/`).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(SsrfRefusedError);
    expect((error as SsrfRefusedError).errorClass).toBe("ssrf_refused");
    expect((error as SsrfRefusedError).reason).toBe("loopback");
    expect(otherHits).toBe(0);
  });

  it("refuses the rest of Gleaner's own port: /metrics, /readyz, a path out of the folder", async () => {
    for (const url of [
      `http://127.0.0.1:${port}/metrics`,
      `http://127.0.0.1:${port}/readyz`,
      `${base}../../metrics`,
      `${base}%2e%2e/%2e%2e/healthz`,
    ]) {
      const error = await crawler.fetch(url).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error, url).toBeInstanceOf(SsrfRefusedError);
    }
  });

  it("refuses the same port under another name (localhost is not the allowed origin)", async () => {
    const error = await crawler.fetch(`http://localhost:${port}/corpus/docs/about.html`).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(SsrfRefusedError);
  });

  it("reports a corpus file it may not read as an HTTP 404", async () => {
    const error = await crawler.fetch(`${base}data.json`).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(CrawlError);
    expect((error as CrawlError).errorClass).toBe("http_4xx");
  });
});
