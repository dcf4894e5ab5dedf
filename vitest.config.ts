import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // The chaos suite kills processes and restarts databases: `npm run test:chaos`.
    exclude: ["test/chaos/**", "**/node_modules/**"],
    globalSetup: ["test/support/global-setup.ts"],
    setupFiles: ["test/support/leak-check.ts"],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Each file owns a database; files run in parallel on the two cores.
    fileParallelism: true,
    maxWorkers: 2,
  },
});
