import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { main } from "../src/cli/main.ts";
import { spawnGleaner, waitFor, type GleanerProcess } from "./support/gleaner-process.ts";
import {
  answerRows,
  keyInSection,
  reply,
  startFakeLlm,
  type FakeLlm,
} from "./support/fake-llm-server.ts";
import { createTestDatabase, type TestDatabase } from "./support/test-database.ts";

/**
 * The real command line, as a child process: `node bin/gleaner.js ...` with DATABASE_URL and a
 * config file, against a fake LLM. Each run pays tsx's startup, so the runs are few and chained.
 */

const ROOT = new URL("..", import.meta.url).pathname;
const SECRET = "sk-secret-value-123";
const ROWS = 12;
const VERSION = (
  JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as {
    version: string;
  }
).version;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

let testDb: TestDatabase;
let llm: FakeLlm;
let client: pg.Client;
let dir: string;
let configFile: string;

function run(args: string[], env: Record<string, string> = {}, timeoutMs = 60_000): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ["bin/gleaner.js", ...args],
      {
        cwd: ROOT,
        timeout: timeoutMs,
        killSignal: "SIGKILL",
        maxBuffer: 16 * 1024 * 1024,
        env: {
          PATH: process.env.PATH ?? "/usr/bin:/bin",
          HOME: process.env.HOME ?? tmpdir(),
          DATABASE_URL: testDb.url,
          GLEANER_TEST_KEY: SECRET,
          GLEANER_LOG_LEVEL: "warn",
          ...env,
        },
      },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === "number" ? error.code : null) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

function describeRun(r: Run): string {
  return `exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
}

function configText(baseUrl: string, apiKeyRef = "${GLEANER_TEST_KEY}"): string {
  return `
llm:
  backends:
    - name: primary
      base_url: ${baseUrl}
      api_key: ${apiKeyRef}
      model: fake-model
      timeout: 5s
worker:
  poll_interval: 100ms
pipelines:
  companies:
    table: public.companies
    inputs: [name, domain]
    outputs:
      industry:  { type: text,    description: "Primary industry" }
      employees: { type: integer, description: "Approximate headcount" }
    min_confidence: 0.5
    batch_size: 5
    retry: { max_attempts: 3, delays: [1m] }
    stages:
      - name: profile
        kind: llm
        backends: [primary]
        prompt: "Describe the company {{name}} ({{domain}}) #{{id}}."
        outputs: [industry, employees]
`;
}

function writeConfig(name: string, text: string): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

interface StatusJson {
  pipeline: string;
  total: number;
  done: number;
  pending: number;
  completeness_pct: number;
}

interface ProcessJson {
  id: string;
  host: string;
  pid: number;
  version: string;
  jobs_in_flight: number;
}

async function statusJson(): Promise<{ pipelines: StatusJson[]; processes: ProcessJson[] }> {
  const r = await run(["status", "-c", configFile, "--json"]);
  expect(r.code, describeRun(r)).toBe(0);
  return JSON.parse(r.stdout) as { pipelines: StatusJson[]; processes: ProcessJson[] };
}

async function status(): Promise<StatusJson> {
  const { pipelines } = await statusJson();
  expect(pipelines).toHaveLength(1);
  return pipelines[0] as StatusJson;
}

async function statuses(): Promise<Record<string, number>> {
  const result = await client.query<{ s: string; n: number }>(
    "select enrichment_status as s, count(*)::int as n from companies group by 1",
  );
  return Object.fromEntries(result.rows.map((r) => [r.s, r.n]));
}

beforeAll(async () => {
  testDb = await createTestDatabase("cli_main");
  llm = await startFakeLlm();
  client = new pg.Client({ connectionString: testDb.url });
  await client.connect();
  dir = mkdtempSync(join(tmpdir(), "gleaner-cli-test-"));
  configFile = writeConfig("gleaner.yaml", configText(llm.url));
});

afterAll(async () => {
  await client?.end();
  await llm?.close();
  await testDb?.drop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("usage", () => {
  it("--help exits 0 and lists every command", async () => {
    const r = await run(["--help"]);
    expect(r.code, describeRun(r)).toBe(0);
    for (const command of [
      "migrate",
      "start",
      "worker",
      "sweep",
      "drain",
      "status",
      "reprocess",
      "doctor",
    ])
      expect(r.stdout).toMatch(new RegExp(`^\\s+${command}\\b`, "m"));
  });

  it("exits 2 on an unknown command", async () => {
    const r = await run(["frobnicate"]);
    expect(r.code, describeRun(r)).toBe(2);
    expect(r.stderr).toMatch(/unknown command/i);
  });

  it("exits 2 naming the variable and the key when the config reads an unset one", async () => {
    const file = writeConfig("unset.yaml", configText(llm.url, "${GLEANER_TEST_UNSET_KEY}"));
    const r = await run(["migrate", "-c", file]);
    expect(r.code, describeRun(r)).toBe(2);
    expect(r.stderr).toContain("GLEANER_TEST_UNSET_KEY");
    expect(r.stderr).toContain("llm.backends[0].api_key");
  });

  it("never prints the API key, even when the server echoes it back (doctor, 401)", async () => {
    const server: Server = createServer((req, res) => {
      // Some servers quote the key they refused.
      const auth = req.headers.authorization ?? "";
      res.writeHead(401, { "content-type": "application/json" });
      res.end(
        JSON.stringify({
          error: { message: `Incorrect API key provided: ${auth}`, type: "invalid_request_error" },
        }),
      );
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const file = writeConfig("unauthorized.yaml", configText(`http://127.0.0.1:${port}/v1`));
      const r = await run(["doctor", "-c", file]);
      expect(r.code, describeRun(r)).toBe(1);
      expect(r.stdout).toMatch(/401/);
      expect(r.stdout).toMatch(/check the API key/);
      expect(r.stdout + r.stderr).not.toContain(SECRET);
      expect(r.stdout + r.stderr).not.toContain("secret-value");
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});

describe("the loop from the command line", () => {
  it("migrate, insert, status, sweep --once, drain, status", async () => {
    const migrated = await run(["migrate", "-c", configFile]);
    expect(migrated.code, describeRun(migrated)).toBe(0);
    expect(migrated.stdout).toContain("applied 000001_gleaner_schema.sql");
    expect(migrated.stdout).toContain("pipeline companies: table public.companies created");

    await client.query(
      `insert into companies (name, domain)
           select 'acme' || i, 'acme' || i || '.example' from generate_series(1, ${ROWS}) i`,
    );
    expect(await status()).toMatchObject({
      pipeline: "companies",
      total: ROWS,
      pending: ROWS,
      done: 0,
    });

    const swept = await run(["sweep", "-c", configFile, "--once"]);
    expect(swept.code, describeRun(swept)).toBe(0);
    expect(swept.stdout).toMatch(new RegExp(`pipeline companies: enqueued ${ROWS} rows`));
    expect(await statuses()).toEqual({ queued: ROWS });

    // Even rows answer with more confidence than odd ones: 0.9 against 0.8 for the row.
    llm.handle(
      answerRows((rowId, prompt) => {
        const id = keyInSection(prompt, rowId);
        return {
          industry: { value: `industry ${id}`, confidence: 0.9 },
          employees: { value: Number(id) * 10, confidence: Number(id) % 2 === 0 ? 0.95 : 0.8 },
        };
      }),
    );
    const drained = await run(["drain", "-c", configFile, "--timeout", "45"], {}, 90_000);
    expect(drained.code, describeRun(drained)).toBe(0);
    expect(drained.stdout).toContain(`companies: ${ROWS}/${ROWS} rows settled`);

    expect(await status()).toMatchObject({
      total: ROWS,
      done: ROWS,
      pending: 0,
      completeness_pct: 100,
    });
    const rows = await client.query<{ id: string; industry: string; employees: number }>(
      "select id, industry, employees from companies order by id",
    );
    for (const row of rows.rows) {
      expect(row.industry).toBe(`industry ${row.id}`);
      expect(row.employees).toBe(Number(row.id) * 10);
    }
  }, 180_000);

  it("status --json prints only JSON on stdout; log lines (an optional backend off) go to stderr", async () => {
    const withOptional = writeConfig(
      "optional-backend.yaml",
      configText(llm.url).replace(
        "llm:\n  backends:\n",
        "llm:\n  backends:\n    - { name: hosted, base_url: https://api.example.com/v1, model: m, optional: true }\n",
      ),
    );
    const r = await run(["status", "-c", withOptional, "--json"], { GLEANER_LOG_LEVEL: "info" });
    expect(r.code, describeRun(r)).toBe(0);
    expect(r.stderr).toContain("optional backend hosted is off");
    expect(r.stdout).not.toContain("optional backend");
    const parsed = JSON.parse(r.stdout) as { pipelines: StatusJson[]; processes: unknown[] };
    expect(parsed.pipelines[0]?.pipeline).toBe("companies");
    expect(parsed.processes).toEqual([]);
  }, 60_000);

  it("reprocess --below and --status done make rows pending again", async () => {
    const below = await run(["reprocess", "companies", "-c", configFile, "--below", "0.85"]);
    expect(below.code, describeRun(below)).toBe(0);
    expect(below.stdout).toContain(`pipeline companies: ${ROWS / 2} rows are pending again`);
    expect(await statuses()).toEqual({ done: ROWS / 2, pending: ROWS / 2 });

    const done = await run(["reprocess", "companies", "-c", configFile, "--status", "done"]);
    expect(done.code, describeRun(done)).toBe(0);
    expect(done.stdout).toContain(`pipeline companies: ${ROWS / 2} rows are pending again`);
    expect(await statuses()).toEqual({ pending: ROWS });
    const fresh = await client.query<{ n: number }>(
      `select count(*)::int as n from companies
        where enrichment_attempts = 0 and enrichment_next_at <= now() and enrichment_claim is null`,
    );
    expect(fresh.rows[0]?.n).toBe(ROWS);
  });

  it("reprocess rejects bad filters and unknown pipelines with exit 2", async () => {
    const [outOfRange, bogus, unknown] = await Promise.all([
      run(["reprocess", "companies", "-c", configFile, "--below", "2"]),
      run(["reprocess", "companies", "-c", configFile, "--status", "bogus"]),
      run(["reprocess", "nosuch", "-c", configFile]),
    ]);
    expect(outOfRange.code, describeRun(outOfRange)).toBe(2);
    expect(outOfRange.stderr).toMatch(/--below/);
    expect(bogus.code, describeRun(bogus)).toBe(2);
    expect(bogus.stderr).toMatch(/bogus/);
    expect(unknown.code, describeRun(unknown)).toBe(2);
    expect(unknown.stderr).toMatch(/nosuch/);
    // Nothing was touched.
    expect(await statuses()).toEqual({ pending: ROWS });
  });

  it("doctor passes against a healthy LLM and a migrated database", async () => {
    const r = await run(["doctor", "-c", configFile]);
    expect(r.code, describeRun(r)).toBe(0);
    expect(r.stdout).toContain("all checks passed");
    expect(r.stdout).toContain("migrations are current");
    expect(r.stdout + r.stderr).not.toContain(SECRET);
  });
});

/** Runs `gleaner <args>` in this process (the code bin/gleaner.js runs): exit code and stderr. */
async function runHere(args: string[]): Promise<{ code: number; stderr: string }> {
  const lines: string[] = [];
  const spy = vi.spyOn(console, "error").mockImplementation((...parts: unknown[]) => {
    lines.push(parts.map(String).join(" "));
  });
  // Should a config load after all, the command runs against the test database, never an
  // embedded one.
  const before = process.env.DATABASE_URL;
  process.env.DATABASE_URL = testDb.url;
  try {
    const code = await main(["node", "gleaner", ...args]);
    return { code, stderr: lines.join("\n") };
  } finally {
    spy.mockRestore();
    if (before === undefined) delete process.env.DATABASE_URL;
    else process.env.DATABASE_URL = before;
  }
}

/** Runs `wait`; if it fails, the worker's output goes into the error. */
async function expectSoon<T>(worker: GleanerProcess, wait: () => Promise<T>): Promise<T> {
  try {
    return await wait();
  } catch (error) {
    const seen = await client.query(
      `select (select json_agg(w) from gleaner.workers w) as workers,
              (select json_agg(s) from (select enrichment_status, count(*) from companies group by 1) s) as rows,
              (select count(*) from graphile_worker.jobs) as jobs`,
    );
    throw new Error(
      `${(error as Error).message}\n--- worker output\n${worker.output()}\n--- database\n${JSON.stringify(seen.rows)}`,
      { cause: error },
    );
  }
}

describe("the live processes of the fleet", () => {
  it("status and status --json list each live worker: host, pid, version, jobs in flight", async () => {
    // Every call hangs (within a long timeout), so the worker's jobs stay in flight until it is
    // stopped (no answer cache: these rows were answered before); a short lease makes it beat
    // every second.
    llm.handle(() => reply.hang());
    const fleetConfig = writeConfig(
      "fleet.yaml",
      configText(llm.url)
        .replace("llm:\n  backends:\n", "llm:\n  cache_ttl: 0s\n  backends:\n")
        .replace("timeout: 5s", "timeout: 10m")
        .replace("    min_confidence: 0.5\n", "    min_confidence: 0.5\n    lease: 6s\n"),
    );
    await client.query(`update companies set enrichment_status = 'pending'`);
    const worker = spawnGleaner(["worker", "-c", fleetConfig], {
      cwd: ROOT,
      env: { DATABASE_URL: testDb.url, GLEANER_TEST_KEY: SECRET },
    });
    try {
      const swept = await run(["sweep", "-c", fleetConfig, "--once"]);
      expect(swept.code, describeRun(swept)).toBe(0);
      expect(swept.stdout).toContain(`enqueued ${ROWS} rows`);
      // The heartbeat carries the count of running jobs: wait for the one that saw them.
      await expectSoon(worker, () =>
        waitFor(
          "the worker's heartbeat to count its running jobs",
          async () =>
            (
              await client.query<{ n: number }>(
                "select jobs_in_flight as n from gleaner.workers where pid = $1",
                [worker.child.pid],
              )
            ).rows[0]?.n || undefined,
          90_000,
          200,
        ),
      );
      const { processes } = await statusJson();
      expect(processes).toHaveLength(1);
      expect(processes[0]).toMatchObject({
        host: hostname(),
        pid: worker.child.pid,
        version: VERSION,
      });
      expect(processes[0]?.jobs_in_flight).toBeGreaterThan(0);
      expect(processes[0]?.jobs_in_flight).toBeLessThanOrEqual(ROWS);

      const text = await run(["status", "-c", configFile]);
      expect(text.code, describeRun(text)).toBe(0);
      expect(text.stdout).toMatch(/process\s+host\s+pid\s+version\s+jobs in flight/);
      expect(text.stdout).toContain(`${hostname()}  ${worker.child.pid}`);
      expect(text.stdout).toContain(VERSION);
    } finally {
      worker.signal("SIGTERM");
      await worker.exited();
    }
    // A stopped worker unregisters: it is no longer listed.
    expect((await statusJson()).processes).toEqual([]);
    const text = await run(["status", "-c", configFile]);
    expect(text.stdout).toContain("no live worker processes");
  }, 180_000);
});

describe("secrets on the command line", () => {
  /** A server refusing every request with a 401 that quotes the key and the URL it was sent. */
  async function quotingServer(): Promise<{ url: string; close: () => Promise<void> }> {
    const server: Server = createServer((req, res) => {
      req.resume();
      res.writeHead(401, { "content-type": "application/json" });
      res.end(
        JSON.stringify({
          error: {
            message: `Incorrect API key provided: ${req.headers.authorization ?? ""} for ${req.method} ${req.url}`,
          },
        }),
      );
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;
    return {
      url: `http://127.0.0.1:${port}`,
      close: async () => {
        server.closeAllConnections();
        await new Promise<void>((resolve) => server.close(() => resolve()));
      },
    };
  }

  it("doctor prints no key written into the file or carried in base_url, though the server quotes both", async () => {
    const server = await quotingServer();
    try {
      const literal = "sk-written-in-the-file-4711";
      const inUrl = "AIza-in-the-base-url-0815";
      const file = writeConfig(
        "keys-in-file.yaml",
        configText(`${server.url}/v1?key=${inUrl}`, literal),
      );
      const r = await run(["doctor", "-c", file]);
      expect(r.code, describeRun(r)).toBe(1);
      expect(r.stdout).toMatch(/401/);
      expect(r.stdout).toContain("Incorrect API key provided: Bearer ***");
      expect(r.stdout + r.stderr).not.toContain(literal);
      expect(r.stdout + r.stderr).not.toContain(inUrl);
    } finally {
      await server.close();
    }
  });

  it("a non-duration from ${X} in lease: exit 2 naming the key, without the value", async () => {
    const file = writeConfig(
      "lease-from-env.yaml",
      configText(llm.url).replace(
        "    batch_size: 5\n",
        "    batch_size: 5\n    lease: ${GLEANER_TEST_LEASE}\n",
      ),
    );
    const r = await run(["migrate", "-c", file], { GLEANER_TEST_LEASE: "hunter2-not-a-duration" });
    expect(r.code, describeRun(r)).toBe(2);
    expect(r.stderr).toContain("pipelines.companies.lease");
    expect(r.stderr).toContain('"${GLEANER_TEST_LEASE}" is not a duration');
    expect(r.stdout + r.stderr).not.toContain("hunter2");
  });

  it.each([
    ["a space", "s3cret zq7v"],
    ["a #", "s3cret#zq7v"],
    ["a /", "s3cret/zq7v"],
    ["an @", "s3cret@zq7v"],
  ])("a malformed DATABASE_URL, its password holding %s, is masked", async (_label, password) => {
    // Port 1 on loopback: nothing listens, nothing leaves the machine.
    const r = await run(["status", "-c", configFile], {
      DATABASE_URL: `postgres://gleaner:${password}@127.0.0.1:1/gleaner`,
    });
    expect(r.code, describeRun(r)).toBe(1);
    expect(r.stderr).toContain("cannot connect to database postgres://gleaner:***@");
    expect(r.stdout + r.stderr).not.toContain("s3cret");
    expect(r.stdout + r.stderr).not.toContain("zq7v");
  });
});

describe("configs refused when they load: exit 2 naming the key", () => {
  const refused: [string, string, (text: string) => string][] = [
    ["pipelines.companies.lease", "at most 24d", (t) => pipelineKey(t, "lease: 90d")],
    [
      "worker.poll_interval",
      "at most 24d",
      (t) => t.replace("poll_interval: 100ms", "poll_interval: 30d"),
    ],
    [
      "pipelines.companies.low_confidence_retry_after",
      "at most 3650d",
      (t) => pipelineKey(t, "low_confidence_retry_after: 9999999999d"),
    ],
    ["llm.backends[0].base_url", "http or https", (t) => baseUrl(t, "file:///etc/passwd")],
    ["llm.backends[0].base_url", "http or https", (t) => baseUrl(t, "ftp://llm.example/v1")],
    ["llm.backends[0].base_url", "http or https", (t) => baseUrl(t, "javascript:alert(1)")],
    [
      "pipelines.companies.stages[1].module",
      "is not a file",
      (t) =>
        `${t}      - name: custom\n        kind: custom\n        module: ./no-such-stage.ts\n        outputs: [employees]\n`.replace(
          "outputs: [industry, employees]",
          "outputs: [industry]",
        ),
    ],
    ["pipelines.companies.outputs", "system column", (t) => output(t, "xmin")],
    ["pipelines.companies.outputs", "system column", (t) => output(t, "ctid")],
    ["pipelines.companies.key", "state columns", (t) => pipelineKey(t, "key: enrichment_status")],
    ["pipelines.companies.table", "Gleaner's own", (t) => table(t, "gleaner.companies")],
    ["pipelines.companies.table", "belongs to PostgreSQL", (t) => table(t, "pg_catalog.companies")],
    ["worker_schema", "is the same as schema", (t) => `schema: jobs\nworker_schema: jobs\n${t}`],
    ["(root)", "not valid YAML", (t) => `${aliasBomb()}\n${t}`],
  ];

  it.each(refused)("%s: %s", async (key, message, edit) => {
    // A key written in the file: this process does not have GLEANER_TEST_KEY.
    const file = writeConfig("refused.yaml", edit(configText(llm.url, "sk-inline-key-0000")));
    const r = await runHere(["migrate", "-c", file]);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toContain(`config ${key}: `);
    expect(r.stderr).toContain(message);
  });
});

describe("an input column named constructor", () => {
  it("migrates, fills and reports like any other", async () => {
    const text = configText(llm.url)
      .replace("table: public.companies", "table: public.makers")
      .replace("  companies:", "  makers:")
      .replace("inputs: [name, domain]", "inputs: [name, constructor]")
      .replace("({{domain}})", "({{constructor}})");
    const file = writeConfig("constructor.yaml", text);
    const migrated = await run(["migrate", "-c", file]);
    expect(migrated.code, describeRun(migrated)).toBe(0);
    expect(migrated.stdout).toContain("pipeline makers: table public.makers created");
    await client.query(
      "insert into makers (name, constructor) values ('acme', 'Wile E.'), ('roadrunner', null)",
    );
    llm.handle(
      answerRows((id) => ({
        industry: { value: `industry ${id}`, confidence: 0.9 },
        employees: { value: 7, confidence: 0.9 },
      })),
    );
    const drained = await run(["drain", "-c", file, "--timeout", "45"], {}, 90_000);
    expect(drained.code, describeRun(drained)).toBe(0);
    const rows = await client.query<{ constructor: string | null; status: string }>(
      "select constructor, enrichment_status as status from makers order by id",
    );
    expect(rows.rows).toEqual([
      { constructor: "Wile E.", status: "done" },
      { constructor: null, status: "done" },
    ]);
    const prompt = llm.requests
      .map((r) => r.prompt)
      .find((p) => p.includes("Describe the company acme ("));
    expect(prompt).toContain("Describe the company acme (Wile E.)");
  }, 180_000);
});

function pipelineKey(text: string, line: string): string {
  return text.replace("    batch_size: 5\n", `    batch_size: 5\n    ${line}\n`);
}

function baseUrl(text: string, url: string): string {
  return text.replace(/base_url: \S+/, `base_url: "${url}"`);
}

function output(text: string, name: string): string {
  return text
    .replace("      employees: { type: integer", `      ${name}: { type: integer`)
    .replace("outputs: [industry, employees]", `outputs: [industry, ${name}]`);
}

function table(text: string, name: string): string {
  return text.replace("table: public.companies", `table: ${name}`);
}

/** Nested aliases that would expand to 9^6 strings: a "billion laughs" file. */
function aliasBomb(): string {
  const lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]'];
  for (let i = 1; i <= 6; i++)
    lines.push(`a${i}: &a${i} [${Array.from({ length: 9 }, () => `*a${i - 1}`).join(", ")}]`);
  return lines.join("\n");
}
