import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { afterAll, beforeAll, expect, it } from "vitest";
import { ROOT } from "./support/ops-contract.ts";
import { spawnGleaner, waitFor, type GleanerProcess } from "./support/gleaner-process.ts";
import { freePort } from "./support/postgres-cluster.ts";
import { createTestDatabase, type TestDatabase } from "./support/test-database.ts";

/**
 * Debian's real `prometheus` server, on loopback, scrapes a running Gleaner with the rules of
 * ops/prometheus/alerts.yml as shipped: the metrics must arrive, and a backlog above the
 * GleanerBacklogHigh threshold must turn that alert pending (its `for: 15m` is kept, so firing is
 * left to promtool's unit tests in test/ops.alerts.test.ts). Nothing sweeps here (`gleaner
 * worker` only), so the backlog stays.
 */
const BACKLOG = 1_500;
let testDb: TestDatabase;
let gleaner: GleanerProcess | undefined;
let prometheus: ChildProcess | undefined;
let prometheusOutput = "";
let dir: string;
let promUrl: string;

beforeAll(async () => {
  testDb = await createTestDatabase("prometheus_server");
  dir = mkdtempSync(join(tmpdir(), "gleaner-prometheus-"));
  const httpPort = await freePort();
  const configFile = join(dir, "gleaner.yaml");
  writeFileSync(
    configFile,
    `
http: { host: 127.0.0.1, port: ${httpPort} }
llm:
  backends:
    - { name: fake, base_url: "http://127.0.0.1:9/v1", model: fake }
pipelines:
  leads:
    table: leads
    inputs: [name]
    outputs: { score: { type: integer, description: "A score" } }
    stages:
      - { name: score, kind: llm, backends: [fake], prompt: "Score {{name}}", outputs: [score] }
`,
  );
  const env = { DATABASE_URL: testDb.url, GLEANER_LOG_LEVEL: "warn" };
  const migrate = spawnGleaner(["migrate", "--config", configFile], { env });
  expect(await migrate.exited(), migrate.output()).toBe(0);
  const client = new pg.Client({ connectionString: testDb.url });
  await client.connect();
  await client.query(
    `insert into leads (name) select 'lead' || i from generate_series(1, ${BACKLOG}) i`,
  );
  await client.end();
  gleaner = spawnGleaner(["worker", "--http", "--config", configFile], { env });

  const promPort = await freePort();
  promUrl = `http://127.0.0.1:${promPort}`;
  const promConfig = join(dir, "prometheus.yml");
  writeFileSync(
    promConfig,
    JSON.stringify({
      global: { scrape_interval: "1s", evaluation_interval: "1s" },
      rule_files: [join(ROOT, "ops/prometheus/alerts.yml")],
      scrape_configs: [
        {
          job_name: "gleaner",
          scrape_interval: "1s",
          scrape_timeout: "1s",
          static_configs: [{ targets: [`127.0.0.1:${httpPort}`] }],
        },
      ],
    }),
  );
  prometheus = spawn(
    "/usr/bin/prometheus",
    [
      `--config.file=${promConfig}`,
      `--storage.tsdb.path=${join(dir, "data")}`,
      `--web.listen-address=127.0.0.1:${promPort}`,
    ],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  prometheus.stdout?.on("data", (d: Buffer) => (prometheusOutput += d.toString()));
  prometheus.stderr?.on("data", (d: Buffer) => (prometheusOutput += d.toString()));
});

afterAll(async () => {
  if (prometheus && prometheus.exitCode === null) {
    const exited = new Promise((r) => prometheus?.once("exit", r));
    prometheus.kill("SIGTERM");
    await exited;
  }
  await gleaner?.kill();
  await testDb?.drop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

interface ApiAnswer<T> {
  status: string;
  data: T;
}

async function api<T>(path: string): Promise<T | undefined> {
  if (prometheus?.exitCode !== null) throw new Error(`prometheus exited: ${prometheusOutput}`);
  try {
    const response = await fetch(`${promUrl}${path}`);
    if (!response.ok) return undefined;
    const body = (await response.json()) as ApiAnswer<T>;
    return body.status === "success" ? body.data : undefined;
  } catch (error) {
    // Not listening yet: the poll asks again.
    if (error instanceof TypeError) return undefined;
    throw error;
  }
}

it("ingests Gleaner's metrics and turns GleanerBacklogHigh pending", async () => {
  const startedAt = Date.now();
  const sample = await waitFor(
    "gleaner_backlog_rows in Prometheus",
    async () => {
      const data = await api<{
        result: { metric: Record<string, string>; value: [number, string] }[];
      }>(`/api/v1/query?query=${encodeURIComponent("gleaner_backlog_rows")}`);
      return data?.result.find((r) => r.metric.pipeline === "leads");
    },
    120_000,
    250,
  );
  expect(Number(sample.value[1])).toBe(BACKLOG);
  const ingestedMs = Date.now() - startedAt;

  const alert = await waitFor(
    "GleanerBacklogHigh pending",
    async () => {
      const data = await api<{ alerts: { labels: Record<string, string>; state: string }[] }>(
        "/api/v1/alerts",
      );
      return data?.alerts.find(
        (a) => a.labels.alertname === "GleanerBacklogHigh" && a.labels.pipeline === "leads",
      );
    },
    120_000,
    250,
  );
  expect(["pending", "firing"]).toContain(alert.state);
  const rules = await api<{ groups: { rules: { name: string; health: string }[] }[] }>(
    "/api/v1/rules",
  );
  const unhealthy = rules?.groups.flatMap((g) => g.rules).filter((r) => r.health === "err");
  expect(unhealthy).toEqual([]);
  console.error(
    `prometheus: first sample after ${ingestedMs} ms, GleanerBacklogHigh ${alert.state} after ${Date.now() - startedAt} ms`,
  );
}, 300_000);
