import { cp, mkdtemp, rm, unlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseConfig } from "../src/config/load-config.ts";
import { connectDatabase, type Database } from "../src/db/connect-database.ts";
import { migrate } from "../src/db/migrate.ts";
import { createSearchProvider } from "../src/search/create-search-provider.ts";
import { indexCorpusFolder } from "../src/search/index-corpus-folder.ts";
import { createLocalSearchProvider } from "../src/search/local-search-provider.ts";
import { MAX_BODY_CHARS, toDocument } from "../src/search/read-corpus-folder.ts";
import { SearchError, type SearchProvider } from "../src/search/search-provider.ts";
import { createTestDatabase, type TestDatabase } from "./support/test-database.ts";
import { MINIMAL_CONFIG_YAML } from "./support/minimal-config.ts";

/**
 * The `local` provider on a real PostgreSQL: test/fixtures/corpus (eight pages about fictional
 * organisations, as HTML, Markdown and text) indexed through the real migration, then searched.
 */

const CORPUS_DIR = fileURLToPath(new URL("./fixtures/corpus/", import.meta.url));
const BASE = "http://127.0.0.1:9464/corpus/";

const CONFIG_YAML = MINIMAL_CONFIG_YAML;

let testDb: TestDatabase;
let database: Database;
let local: SearchProvider;
let tmp: string;

beforeAll(async () => {
  testDb = await createTestDatabase("search_local");
  const config = parseConfig(CONFIG_YAML, { env: { DATABASE_URL: testDb.url } });
  database = await connectDatabase(config, { env: { DATABASE_URL: testDb.url } });
  await migrate(database, config);
  local = createSearchProvider(
    { provider: "local", corpus: "demo", timeout_ms: 5_000, limit: 10 },
    { db: database.db, schema: "gleaner" },
  );
  tmp = await mkdtemp(join(tmpdir(), "gleaner-corpus-"));
});

afterAll(async () => {
  await database?.close();
  await testDb?.drop();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

async function documents(corpus: string) {
  const { rows } = await database.pool.query<{
    id: number;
    url: string;
    title: string;
    body: string;
    xmin: string;
  }>(
    "select id, url, title, body, xmin::text from gleaner.search_documents where corpus = $1 order by url",
    [corpus],
  );
  return rows;
}

describe("indexCorpusFolder", () => {
  it("loads every .html, .md and .txt file with a title and a URL under the base", async () => {
    const report = await indexCorpusFolder(database.db, "gleaner", "demo", CORPUS_DIR, BASE);
    expect(report).toEqual({
      corpus: "demo",
      files: 8,
      inserted: 8,
      updated: 0,
      unchanged: 0,
      removed: 0,
      truncated: [],
    });
    const rows = await documents("demo");
    expect(rows.map((r) => [r.url.slice(BASE.length), r.title])).toEqual([
      ["acme-rocketry.html", "Acme Rocketry Cooperative"], // <title>
      ["borealis-bakery.md", "Borealis Bakery Collective"], // first # heading
      ["cobalt-river-foundation.html", "Cobalt River Foundation"], // no <title>: first <h1>
      ["dunmore-shipping.txt", "dunmore shipping"], // text: the file name
      ["ellsworth-labs/about.html", "Ellsworth Labs — About"], // entity-free <title>, subfolder
      ["ellsworth-labs/careers.md", "Careers at Ellsworth Labs"], // setext heading
      ["fennwick-orchards.txt", "fennwick orchards"],
      ["garnet-mutual-bank.html", "Garnet Mutual Bank"],
    ]);
  });

  it("reduces HTML to visible text: no script, style, noscript or head, entities decoded", async () => {
    const rows = await documents("demo");
    const garnet = rows.find((r) => r.url.endsWith("garnet-mutual-bank.html"));
    expect(garnet?.body).toContain("Rates <updated weekly> — see the branch for details.");
    expect(garnet?.body).not.toContain("quasarbeacon");
    const acme = rows.find((r) => r.url.endsWith("acme-rocketry.html"));
    expect(acme?.body).toContain("Members share workshops & test stands");
    expect(acme?.body).not.toMatch(/font-family|trackingPixel/);
    // Blocks become lines, so words of neighbouring elements never merge.
    expect(acme?.body.split("\n")[0]).toBe("Home | About");
    const borealis = rows.find((r) => r.url.endsWith("borealis-bakery.md"));
    expect(borealis?.body).toContain("Known for: sourdough rye baked");
    expect(borealis?.body).not.toContain("https://borealis.example/rye");
  });

  it("is idempotent: a second run rewrites nothing", async () => {
    const before = await documents("demo");
    const report = await indexCorpusFolder(database.db, "gleaner", "demo", CORPUS_DIR, BASE);
    expect(report).toMatchObject({ files: 8, inserted: 0, updated: 0, unchanged: 8, removed: 0 });
    // Same ids, and the same row versions (xmin): not even an identical update happened.
    expect(await documents("demo")).toEqual(before);
  });

  it("updates changed files and removes vanished ones, within its own base URL only", async () => {
    const dir = join(tmp, "copy");
    await cp(CORPUS_DIR, dir, { recursive: true });
    const base = "http://127.0.0.1:9464/copy/";
    await indexCorpusFolder(database.db, "gleaner", "copy", dir, base);
    await writeFile(join(dir, "dunmore-shipping.txt"), "Dunmore Shipping now sails to Lisbon.\n");
    await unlink(join(dir, "fennwick-orchards.txt"));
    const report = await indexCorpusFolder(database.db, "gleaner", "copy", dir, base);
    expect(report).toMatchObject({ files: 7, inserted: 0, updated: 1, unchanged: 6, removed: 1 });
    const copy = createLocalSearchProvider({
      db: database.db,
      schema: "gleaner",
      corpus: "copy",
      timeoutMs: 5_000,
    });
    expect((await copy.search("Lisbon", { limit: 5 })).map((r) => r.url)).toEqual([
      `${base}dunmore-shipping.txt`,
    ]);
    expect(await copy.search("heritage apples", { limit: 5 })).toEqual([]);
    // The demo corpus, under another base URL, was not touched.
    expect(await documents("demo")).toHaveLength(8);
  });
});

describe("local search", () => {
  it.each([
    ["solid-fuel propulsion Tucson", "acme-rocketry.html"],
    ["sourdough rye", "borealis-bakery.md"],
    ["salmon habitat", "cobalt-river-foundation.html"],
    ["container vessels Rotterdam", "dunmore-shipping.txt"],
    ["graphene desalination", "ellsworth-labs/about.html"],
    ["cleanroom technician", "ellsworth-labs/careers.md"],
    ["heritage apples Kent", "fennwick-orchards.txt"],
    ["savings bank Porto", "garnet-mutual-bank.html"],
    ['"cider house"', "fennwick-orchards.txt"],
    ["Acme Rocketry", "acme-rocketry.html"],
  ])("%s → %s first", async (query, path) => {
    const results = await local.search(query, { limit: 5 });
    expect(results[0]?.url).toBe(BASE + path);
  });

  it("weighs a word in a title more than the same word once in a body", async () => {
    // "About" is once in the Ellsworth page's title and once in Garnet's body ("about 600").
    // (The Acme page has it three times in its body, which outweighs one title mention.)
    const order = (await local.search("about", { limit: 5 })).map((r) => r.url.slice(BASE.length));
    expect(order).toEqual(
      expect.arrayContaining(["ellsworth-labs/about.html", "garnet-mutual-bank.html"]),
    );
    expect(order.indexOf("ellsworth-labs/about.html")).toBeLessThan(
      order.indexOf("garnet-mutual-bank.html"),
    );
  });

  it("answers with title, URL, a plain-text snippet around the match, rank and provider", async () => {
    const [first] = await local.search("salmon", { limit: 3 });
    expect(first).toMatchObject({
      title: "Cobalt River Foundation",
      url: `${BASE}cobalt-river-foundation.html`,
      rank: 1,
      provider: "local:demo",
    });
    expect(first?.snippet).toContain("salmon habitat");
    expect(first?.snippet).not.toMatch(/<b>|<\/b>/);
  });

  it("understands websearch syntax: exclusions", async () => {
    expect(await local.search("bank", { limit: 5 })).toHaveLength(1);
    expect(await local.search("bank -Porto", { limit: 5 })).toEqual([]);
  });

  it("finds nothing for words only present in scripts, or in another corpus", async () => {
    expect(await local.search("zanzibarwidget", { limit: 5 })).toEqual([]);
    expect(await local.search("quasarbeacon", { limit: 5 })).toEqual([]);
    const other = join(tmp, "other");
    await cp(join(CORPUS_DIR, "dunmore-shipping.txt"), join(other, "ships.txt"));
    await indexCorpusFolder(database.db, "gleaner", "other", other, "http://127.0.0.1:9464/other/");
    expect((await local.search("Dunmore", { limit: 5 })).map((r) => r.url)).toEqual([
      `${BASE}dunmore-shipping.txt`,
    ]);
  });

  it("honours the limit, and returns nothing for a query without words", async () => {
    expect(await local.search("in", { limit: 2 })).toHaveLength(2);
    expect(await local.search("!!! ???", { limit: 5 })).toEqual([]);
  });

  it("fails permanently, saying what to do, when the table does not exist", async () => {
    const unmigrated = createLocalSearchProvider({
      db: database.db,
      schema: "public",
      corpus: "demo",
      timeoutMs: 5_000,
    });
    const error = await unmigrated.search("bank", { limit: 3 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SearchError);
    expect(error).toMatchObject({
      errorClass: "bad_request",
      permanent: true,
      provider: "local:demo",
    });
    expect((error as Error).message).toContain("gleaner migrate");
  });

  it("rejects at once when the caller already aborted", async () => {
    const reason = new Error("stopping");
    await expect(
      local.search("bank", { limit: 3, signal: AbortSignal.abort(reason) }),
    ).rejects.toBe(reason);
  });
});

describe("corpus documents", () => {
  it("takes a Markdown title from front matter, ignoring its closing line as an underline", () => {
    expect(toDocument("a.md", "---\ntitle: From Front Matter\n---\n# Heading\n").title).toBe(
      "From Front Matter",
    );
    expect(toDocument("a.md", "---\nlayout: page\n---\nBody first\n\n## Second\n").title).toBe(
      "Second",
    );
  });

  it("cuts a huge body to what a tsvector can hold, and says so", () => {
    const doc = toDocument("big.txt", "word ".repeat(MAX_BODY_CHARS));
    expect(doc.truncated).toBe(true);
    expect(doc.body.length).toBe(MAX_BODY_CHARS);
  });
});
