#!/usr/bin/env node
// Gleaner's command line. Runs the compiled JavaScript in dist/ (built by `npm install`) when it
// is at least as new as every source file; otherwise — sources edited since the build, no
// build (an install without dev dependencies), or GLEANER_FROM_SOURCES=1 — the TypeScript
// sources through tsx, so nobody ever runs stale code.
import { readdirSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");

function builtAt() {
  try {
    return statSync(join(root, "dist", ".built")).mtimeMs;
  } catch {
    return undefined;
  }
}

/**
 * True when some file under dir changed after `since` (a few ms for Gleaner's sources). An
 * install without sources (an image holding only dist/) has nothing newer.
 */
function changedSince(dir, since) {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return false;
  }
  for (const entry of entries) {
    const path = join(dir, entry.name);
    if (entry.isDirectory() ? changedSince(path, since) : statSync(path).mtimeMs > since)
      return true;
  }
  return false;
}

const built = process.env.GLEANER_FROM_SOURCES ? undefined : builtAt();
let main;
if (built !== undefined && !changedSince(join(root, "src"), built)) {
  ({ main } = await import("../dist/cli/main.js"));
} else {
  const { register } = await import("tsx/esm/api");
  register();
  ({ main } = await import("../src/cli/main.ts"));
}
process.exitCode = await main(process.argv);
