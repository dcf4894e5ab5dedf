import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

/**
 * The layer order of src/ (docs/architecture.md, "Layers"), read from every import of every
 * file, so a lower layer importing a higher one cannot come back unnoticed. A folder may import
 * its own files, any lower layer and the folders of its own rank; never a higher one.
 */

const SRC = fileURLToPath(new URL("../src", import.meta.url));

/** Lowest first. Folders of one rank may import each other. */
const RANK: Record<string, number> = {
  core: 0,
  config: 1,
  log: 1,
  db: 2,
  concurrency: 3,
  crawl: 3,
  search: 3,
  llm: 4,
  // Row state, the stage machine and its statements are one layer: stages report into the
  // row state the pipeline settles, and the statements write that state.
  pipeline: 5,
  // Budgets reserve and settle in src/sql's ledger, around the LLM calls of a pipeline.
  budget: 5,
  // Batch mode queues, submits and applies LLM calls for a pipeline's rows through src/sql.
  "llm/batch": 5,
  stages: 5,
  sql: 5,
  metrics: 6,
  jobs: 6,
  sweep: 6,
  worker: 7,
  http: 7,
  api: 8,
  // `gleaner eval` drives a shadow pipeline with the worker and serves corpora on the HTTP port.
  eval: 8,
  app: 9,
  cli: 10,
  index: 11,
};

/**
 * Known exceptions, each with why it is still there. Shrink this list; never grow it.
 * `migrate` installs everything a process needs, ad-hoc pipelines and corpus indexes included;
 * src/sql holds every lock-taking statement (house style), the shared concurrency limits' too.
 */
const ALLOWED: ReadonlySet<string> = new Set([
  "concurrency/adaptive-concurrency.ts -> sql/adjust-concurrency-limits.ts",
  "concurrency/adaptive-concurrency.ts -> sql/read-concurrency-limits.ts",
  "concurrency/adaptive-concurrency.ts -> sql/register-concurrency-limits.ts",
  "db/migrate.ts -> pipeline/adhoc-pipelines.ts",
  "db/migrate.ts -> search/index-corpus-folder.ts",
  "db/migrate.ts -> search/corpus-folders.ts",
  "db/migrate.ts -> search/search-cache.ts",
]);

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return path.endsWith(".ts") ? [path] : [];
  });
}

/** Relative specifiers of static imports and re-exports, and of dynamic `import("…")`. */
function importsOf(text: string): string[] {
  const found: string[] = [];
  const pattern = /(?:^|\n)\s*(?:import|export)\s[^;]*?from\s+"([^"]+)"|import\(\s*"([^"]+)"\s*\)/g;
  for (const match of text.matchAll(pattern)) {
    const spec = match[1] ?? match[2];
    if (spec?.startsWith(".")) found.push(spec);
  }
  return found;
}

/** The folder under src/ (llm/batch counts apart: it works at the pipeline's level). */
const layerOf = (path: string): string =>
  path.startsWith("llm/batch/") ? "llm/batch" : (path.split("/")[0] ?? "").replace(/\.ts$/, "");

function edges(): string[] {
  const list: string[] = [];
  for (const file of sourceFiles(SRC)) {
    const from = relative(SRC, file);
    for (const spec of importsOf(readFileSync(file, "utf8"))) {
      list.push(`${from} -> ${relative(SRC, resolve(dirname(file), spec))}`);
    }
  }
  return list;
}

describe("layers of src/", () => {
  it("gives every folder of src/ a rank", () => {
    const folders = readdirSync(SRC).map((name) => name.replace(/\.ts$/, ""));
    expect(folders.filter((f) => RANK[f] === undefined)).toEqual([]);
  });

  it("has no import from a lower layer into a higher one", () => {
    const upward = edges().filter((edge) => {
      const [from = "", to = ""] = edge.split(" -> ");
      const a = layerOf(from);
      const b = layerOf(to);
      if (a === b || ALLOWED.has(edge)) return false;
      return (RANK[b] ?? Infinity) > (RANK[a] ?? -Infinity);
    });
    expect(upward).toEqual([]);
  });

  it("keeps its known exceptions real, so a fixed one leaves the list", () => {
    const all = new Set(edges());
    expect([...ALLOWED].filter((edge) => !all.has(edge))).toEqual([]);
  });

  it("catches what the brief found: config, db, search and concurrency reaching up", () => {
    // The rule itself, on the edges that used to exist (issue 8).
    for (const edge of [
      "config/load-config.ts -> crawl/browser-pool.ts",
      "db/database-types.ts -> llm/llm-types.ts",
      "search/search-http.ts -> llm/classify-llm-error.ts",
      "concurrency/process-share.ts -> worker/start-worker.ts",
    ]) {
      const [from = "", to = ""] = edge.split(" -> ");
      expect(RANK[layerOf(to)], edge).toBeGreaterThan(RANK[layerOf(from)] ?? 0);
    }
  });
});
