#!/usr/bin/env node
// Compiles src/ to dist/ (JavaScript with declarations), copies the files that are not
// TypeScript (the status page), and stamps dist/.built, which bin/gleaner.js compares with the
// sources. Run by `npm install` through `prepare`. Without TypeScript (an install with
// --omit=dev) it builds nothing and says so: the command line then runs the sources through tsx.
import { spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const src = join(root, "src");
const dist = join(root, "dist");

let tsc;
try {
  tsc = createRequire(join(root, "package.json")).resolve("typescript/bin/tsc");
} catch {
  process.stderr.write(
    "gleaner build: TypeScript is not installed (npm install without dev dependencies?); " +
      "skipping the build, the command line will run the sources through tsx\n",
  );
  process.exit(0);
}

const started = Date.now();
const result = spawnSync(process.execPath, [tsc, "-p", join(root, "tsconfig.build.json")], {
  cwd: root,
  stdio: ["ignore", "inherit", "inherit"],
});
if (result.status !== 0) {
  process.stderr.write(`gleaner build: tsc failed (exit ${result.status ?? result.signal})\n`);
  process.exit(1);
}

/** Every file under src/ that tsc does not emit, at the same place under dist/. */
function copyAssets(from, to) {
  for (const entry of readdirSync(from, { withFileTypes: true })) {
    const source = join(from, entry.name);
    const target = join(to, entry.name);
    if (entry.isDirectory()) copyAssets(source, target);
    else if (!/\.(ts|mts|cts)$/.test(entry.name)) {
      mkdirSync(to, { recursive: true });
      cpSync(source, target);
    }
  }
}
copyAssets(src, dist);

if (!existsSync(join(dist, "cli", "main.js"))) {
  process.stderr.write("gleaner build: dist/cli/main.js is missing after tsc\n");
  process.exit(1);
}
writeFileSync(join(dist, ".built"), `${new Date().toISOString()}\n`);
process.stderr.write(`gleaner build: dist/ built in ${Date.now() - started} ms\n`);
