import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

/**
 * Playwright loads on the first render (browser-pool.ts), not when a module is imported: a
 * command that never renders (status, --help) or a library user never pays for it. Checked in a
 * fresh node process that imports the library, the CLI and every crawl module, then counts the
 * playwright-core files in the CommonJS cache (playwright-core is CommonJS, so an ESM import of
 * it lands there too); a require of it afterwards shows the probe sees it when it is there.
 */

const ROOT = fileURLToPath(new URL("..", import.meta.url));

const PROBE = `
import { createRequire } from "node:module";
const root = ${JSON.stringify(ROOT)};
const require = createRequire(root + "package.json");
const loaded = () => Object.keys(require.cache).filter((k) => k.includes("playwright-core")).length;
for (const path of [
  "src/index.ts",
  "src/cli/main.ts",
  "src/stages/research-services.ts",
  "src/crawl/page-reader.ts",
  "src/crawl/crawler.ts",
  "src/crawl/browser-pool.ts",
]) await import(new URL(path, "file://" + root).href);
const before = loaded();
require("playwright-core");
console.log(JSON.stringify({ before, after: loaded() }));
`;

describe("playwright-core is loaded lazily", () => {
  it("is not loaded by importing Gleaner's modules, only when asked for", async () => {
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ["--import", "tsx", "--input-type=module", "-e", PROBE],
      { cwd: ROOT },
    );
    const counts = JSON.parse(stdout.trim().split("\n").at(-1) ?? "{}") as {
      before: number;
      after: number;
    };
    expect(counts.before).toBe(0);
    expect(counts.after).toBeGreaterThan(0);
  }, 120_000);
});
