import { defineConfig } from "vitest/config";

/**
 * `npm run test:chaos`: real processes killed, databases restarted, connections dropped. Each
 * file owns its processes (and, where it restarts one, its own PostgreSQL cluster), so files
 * run one at a time: their timings are printed and must not fight each other for the 2 cores.
 */
export default defineConfig({
  test: {
    include: ["test/chaos/**/*.test.ts"],
    globalSetup: ["test/support/global-setup.ts"],
    setupFiles: ["test/support/leak-check.ts"],
    testTimeout: 300_000,
    hookTimeout: 120_000,
    fileParallelism: false,
  },
});
