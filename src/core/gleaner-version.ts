import { readFileSync } from "node:fs";

/**
 * This Gleaner's version, from its package.json (two folders up from src/core/ and from
 * dist/core/ alike): each worker process writes it in gleaner.workers, so a fleet mid-rollout
 * shows which processes still run the old release.
 */
export const GLEANER_VERSION: string = (
  JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as {
    version: string;
  }
).version;
