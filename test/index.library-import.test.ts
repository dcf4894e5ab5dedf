import { execFile } from "node:child_process";
import { describe, expect, it } from "vitest";

const ROOT = new URL("..", import.meta.url).pathname;

/**
 * Importing Gleaner as a library, in a process of its own: what the host application had
 * before the import must be what it has after — pg's global type parsers, the environment,
 * signal and exit handlers, stdout/stderr error handlers.
 */
const PROBE = `
import pg from "pg";
const seen = () => ({
  int8: typeof pg.types.getTypeParser(20)("9007199254740993"),
  env: JSON.stringify(process.env),
  listeners: ["SIGINT", "SIGTERM", "SIGHUP", "exit", "beforeExit", "unhandledRejection", "uncaughtException"]
    .map((e) => process.listenerCount(e)).join(","),
  streams: [process.stdout.listenerCount("error"), process.stderr.listenerCount("error")].join(","),
});
const before = seen();
const gleaner = await import("./src/index.ts");
const after = seen();
process.stdout.write(JSON.stringify({ before, after, exports: Object.keys(gleaner).length }));
`;

function probe(): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ["--import", "tsx", "--input-type=module", "-e", PROBE],
      { cwd: ROOT, timeout: 60_000 },
      (error, stdout, stderr) =>
        error ? reject(new Error(stderr, { cause: error })) : resolve(stdout),
    );
  });
}

describe("importing src/index.ts", () => {
  it("changes nothing process-wide: pg's int8 parser, the environment, handlers", async () => {
    const { before, after, exports } = JSON.parse(await probe()) as {
      before: Record<string, string>;
      after: Record<string, string>;
      exports: number;
    };
    expect(exports).toBeGreaterThan(5);
    expect(after.int8).toBe("string");
    expect(after).toEqual(before);
  }, 90_000);
});
