import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApiRouter } from "../src/api/api-router.ts";
import { startHttpServer } from "../src/http/start-http-server.ts";
import { createMetrics } from "../src/metrics/create-metrics.ts";
import { startHarness, type Harness } from "./support/gleaner-harness.ts";

/**
 * A key written in a backend's base_url query string (Azure- or Google-style `?key=`) goes to the
 * LLM server, and nowhere else: a real call fails against a server on loopback that quotes the
 * request URL back, as real APIs do, and the key is then in no stored error, no /metrics series,
 * no /v1/pipelines report and no status page.
 */

const KEY = "AIzaSy-secret-query-key-0123";

let echo: Server;
let requests: string[] = [];
let h: Harness;
let http: Awaited<ReturnType<typeof startHttpServer>>;

beforeAll(async () => {
  // Answers every request with a 404 quoting the method and URL, query string included.
  echo = createServer((req, res) => {
    requests.push(req.url ?? "");
    req.resume();
    req.on("end", () => {
      res.writeHead(404, { "content-type": "application/json" });
      res.end(JSON.stringify({ error: { message: `Invalid URL (${req.method} ${req.url})` } }));
    });
  });
  await new Promise<void>((resolve) => echo.listen(0, "127.0.0.1", resolve));
  const { port } = echo.address() as AddressInfo;
  h = await startHarness(
    "config_secrets",
    `
llm:
  backends:
    - name: keyed
      base_url: http://127.0.0.1:${port}/v1?key=${KEY}
      model: fake-model
      timeout: 5s
pipelines:
  companies:
    table: public.companies
    inputs: [name]
    outputs:
      industry: { type: text, description: "Primary industry" }
    retry: { max_attempts: 1, delays: [1m] }
    stages:
      - name: profile
        kind: llm
        backends: [keyed]
        prompt: "Describe {{name}}."
        outputs: [industry]
`,
  );
  http = await startHttpServer({
    host: "127.0.0.1",
    port: 0,
    registry: createMetrics(h.app.runtime).registry,
    database: h.app.database,
    schema: h.app.config.schema,
    api: createApiRouter(h.app.runtime, () => {}),
  });
});

afterAll(async () => {
  await http?.close();
  await h?.close();
  echo?.closeAllConnections();
  await new Promise<void>((resolve) => echo?.close(() => resolve()));
});

describe("a key in a backend's base_url", () => {
  it("reaches the LLM server as a query parameter of a well-formed request", async () => {
    requests = [];
    await h.query("insert into companies (name) values ('acme')");
    await h.drain();
    // The path is the API's, not glued after the key (`/v1?key=K/chat/completions`).
    expect(requests[0]).toBe(`/v1/chat/completions?key=${KEY}`);
  });

  it("is in no stored error: the row's state quotes the server's answer with the key masked", async () => {
    const [row] = await h.query<{ status: string; state: unknown }>(
      "select enrichment_status as status, enrichment_state as state from companies",
    );
    expect(row?.status).toBe("exhausted");
    const state = JSON.stringify(row?.state);
    expect(state).toContain("Invalid URL (POST /v1/chat/completions?key=***)");
    expect(state).not.toContain(KEY);
  });

  it("is not on /metrics, /v1/pipelines or the status page", async () => {
    for (const path of ["/metrics", "/v1/pipelines", "/v1/pipelines/companies/report", "/"]) {
      const response = await fetch(`${http.url}${path}`);
      const text = await response.text();
      expect(response.status, path).toBe(200);
      expect(text, path).not.toContain(KEY);
    }
    const report = await (await fetch(`${http.url}/v1/pipelines`)).text();
    expect(report).toContain("key=***");
  });

  it("is not in the base_url the config shows", () => {
    const backend = h.app.config.backends[0];
    expect(backend?.base_url).not.toContain(KEY);
    expect(backend?.query).toEqual({ key: KEY });
  });
});
