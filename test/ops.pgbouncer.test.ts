import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { afterAll, beforeAll, expect, it } from "vitest";
import { answerRows, keyInSection, startFakeLlm, type FakeLlm } from "./support/fake-llm-server.ts";
import { spawnGleaner, waitFor, type GleanerProcess } from "./support/gleaner-process.ts";
import { startPgBouncer, type PgBouncer } from "./support/pgbouncer.ts";
import { createTestDatabase, type TestDatabase } from "./support/test-database.ts";

/**
 * The whole loop through a real PgBouncer in transaction mode (two server connections, so one
 * client's transactions hop between them): migrate, start, rows inserted with SQL, done. The
 * sweep's cron never fires during the test, so the rows start only because the trigger's NOTIFY
 * reached the scheduler, which LISTENs on the direct `listen_url` — a transaction pooler passes no
 * notifications on.
 */
const ROWS = 30;
let llm: FakeLlm;
let testDb: TestDatabase;
let bouncer: PgBouncer;
let direct: pg.Pool;
let gleaner: GleanerProcess | undefined;
let env: NodeJS.ProcessEnv;
let configFile: string;

beforeAll(async () => {
  llm = await startFakeLlm();
  llm.handle(
    answerRows((id, prompt) => ({
      score: { value: Number(keyInSection(prompt, id)), confidence: 0.9 },
    })),
  );
  testDb = await createTestDatabase("pgbouncer");
  const upstream = new URL(testDb.url);
  bouncer = await startPgBouncer({
    upstream: { host: upstream.hostname, port: Number(upstream.port), user: upstream.username },
    poolSize: 2,
  });
  direct = new pg.Pool({ connectionString: testDb.url, max: 2 });
  configFile = join(mkdtempSync(join(tmpdir(), "gleaner-pgbouncer-")), "gleaner.yaml");
  writeFileSync(
    configFile,
    `
listen_url: ${testDb.url}
worker: { concurrency: 4, poll_interval: 200ms, prepared_statements: false }
llm:
  backends:
    - { name: fake, base_url: ${llm.url}, model: fake, timeout: 30s }
pipelines:
  leads:
    table: leads
    inputs: [name]
    outputs: { score: { type: integer, description: "A score" } }
    schedule: "0 0 1 1 *"
    batch_size: 5
    stages:
      - { name: score, kind: llm, backends: [fake], prompt: "Score {{name}} #{{id}}", outputs: [score] }
`,
  );
  env = { DATABASE_URL: bouncer.url(testDb.name), GLEANER_LOG_LEVEL: "warn" };
});

afterAll(async () => {
  await gleaner?.kill();
  await direct?.end();
  await bouncer?.stop();
  await testDb?.drop();
  await llm?.close();
});

it("migrates, sweeps and works rows to done through PgBouncer, listening directly", async () => {
  const migrate = spawnGleaner(["migrate", "--config", configFile], { env });
  expect(await migrate.exited(), migrate.output()).toBe(0);

  gleaner = spawnGleaner(["start", "--no-migrate", "--no-http", "--config", configFile], { env });
  const started = gleaner;
  await waitFor(
    "the scheduler's direct LISTEN connection",
    async () => {
      if (!started.alive()) throw new Error(`gleaner exited: ${started.output()}`);
      const r = await direct.query<{ n: number }>(
        `select count(*)::int as n from pg_stat_activity
          where datname = current_database() and application_name = 'gleaner-listen'
            and query ilike 'listen%'`,
      );
      return (r.rows[0]?.n ?? 0) === 1;
    },
    60_000,
  );

  await direct.query(
    `insert into leads (name) select 'lead' || i from generate_series(1, ${ROWS}) i`,
  );
  await waitFor(
    "every row done",
    async () => {
      if (!started.alive()) throw new Error(`gleaner exited: ${started.output()}`);
      const r = await direct.query<{ n: number }>(
        "select count(*)::int as n from leads where enrichment_status = 'done'",
      );
      return r.rows[0]?.n === ROWS;
    },
    90_000,
  );
  const rows = await direct.query<{ id: string; score: number }>("select id, score from leads");
  for (const row of rows.rows) expect(row.score).toBe(Number(row.id));

  // Everything but the LISTEN connection went through the pooler's two server connections.
  const backends = await direct.query<{ application_name: string; n: number }>(
    `select application_name, count(*)::int as n from pg_stat_activity
      where datname = current_database() and application_name like 'gleaner%'
      group by 1 order by 1`,
  );
  const total = backends.rows.reduce((sum, r) => sum + r.n, 0);
  expect(total, JSON.stringify(backends.rows)).toBeLessThanOrEqual(3);
  expect(started.output()).not.toMatch(/prepared statement/i);
}, 180_000);
