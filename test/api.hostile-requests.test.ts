import { request, type IncomingHttpHeaders } from "node:http";
import { Registry } from "prom-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApiRouter } from "../src/api/api-router.ts";
import { startHttpServer } from "../src/http/start-http-server.ts";
import type { Runtime } from "../src/pipeline/runtime.ts";
import { startFakeLlm, type FakeLlm } from "./support/fake-llm-server.ts";
import { startHarness, type Harness } from "./support/gleaner-harness.ts";

/**
 * The HTTP port as an attacker and a careless client reach it: a web page rebinding its own
 * name to 127.0.0.1, a cross-site form aimed at a state-changing route, an endless chunked
 * upload, and paths that try to climb out of /v1/. Requests go out raw (node:http), so the
 * headers and paths arrive exactly as written.
 */

let llm: FakeLlm;
let h: Harness;
let port: number;
let closeServer: () => Promise<void>;
const LIMIT = 4096;
const TOKEN = "hostile-token-0123456789abcdef";

interface RawAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  json: { error?: string; id?: string; status?: string; total?: number };
}

/**
 * One request with the path and headers exactly as given. An answer must come within the
 * deadline: a request nobody answers is the bug some of these tests look for.
 */
function raw(
  method: string,
  path: string,
  options: { headers?: Record<string, string>; body?: string; at?: number } = {},
): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: "127.0.0.1",
        port: options.at ?? port,
        method,
        path,
        headers: {
          ...(options.body === undefined
            ? {}
            : { "content-length": Buffer.byteLength(options.body) }),
          ...options.headers,
        },
      },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => (body += chunk));
        res.on("end", () => {
          let json = {};
          try {
            json = JSON.parse(body) as RawAnswer["json"];
          } catch {
            // Plain text answers (metrics, health) are read from `body`.
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body, json });
        });
      },
    );
    req.setTimeout(10_000, () => req.destroy(new Error(`no answer to ${method} ${path}`)));
    req.on("error", reject);
    req.end(options.body);
  });
}

async function serve(runtime: Runtime) {
  return startHttpServer({
    host: "127.0.0.1",
    port: 0,
    registry: new Registry(),
    database: h.app.database,
    schema: "gleaner",
    api: createApiRouter(runtime, () => {}),
  });
}

async function submitJob(): Promise<string> {
  const created = await raw("POST", "/v1/jobs", {
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ pipeline: "companies", rows: [{ name: "acme", domain: "acme.com" }] }),
  });
  expect(created.status).toBe(201);
  return created.json.id as string;
}

beforeAll(async () => {
  llm = await startFakeLlm();
  h = await startHarness(
    "api_hostile",
    `
llm:
  backends: [{ name: fake, base_url: ${llm.url}, model: fake }]
api: { max_body_bytes: ${LIMIT} }
pipelines:
  companies:
    table: companies
    inputs: [name, domain]
    outputs:
      industry: { type: text, description: "Primary industry" }
    stages:
      - { name: profile, kind: llm, backends: [fake], prompt: "About {{name}} ({{domain}})", outputs: [industry] }
`,
  );
  const http = await serve(h.app.runtime);
  port = new URL(http.url).port ? Number(new URL(http.url).port) : 80;
  closeServer = http.close;
});

afterAll(async () => {
  await closeServer?.();
  await h?.close();
  await llm?.close();
});

describe("the Host header, with no api.tokens (DNS rebinding)", () => {
  it("refuses the API and the status page for a name that is not loopback", async () => {
    for (const host of [
      `evil.example:${port}`,
      "evil.example",
      `localhost.evil.example:${port}`,
      `127.0.0.1.nip.io:${port}`,
      `0.0.0.0:${port}`,
    ]) {
      for (const path of ["/v1/jobs", "/", "/openapi.json", "/v1/pipelines"]) {
        const answer = await raw("GET", path, { headers: { host } });
        expect({ host, path, status: answer.status }).toEqual({ host, path, status: 421 });
        expect(answer.body).toContain("api.tokens");
        expect(answer.body).toContain("Host");
      }
    }
    // A cross-site POST through a rebound name changes nothing either.
    const id = await submitJob();
    const cancel = await raw("POST", `/v1/jobs/${id}/cancel`, {
      headers: { host: `evil.example:${port}` },
    });
    expect(cancel.status).toBe(421);
    expect((await raw("GET", `/v1/jobs/${id}`)).json.status).toBe("active");
  });

  it("serves loopback names, with or without a port", async () => {
    for (const host of [
      `127.0.0.1:${port}`,
      `localhost:${port}`,
      `LOCALHOST:${port}`,
      "localhost",
      `[::1]:${port}`,
      `127.0.0.2:${port}`,
    ]) {
      const answer = await raw("GET", "/v1/jobs", { headers: { host } });
      expect({ host, status: answer.status }).toEqual({ host, status: 200 });
    }
  });

  it("keeps /metrics, /healthz and /readyz open whatever the Host", async () => {
    for (const path of ["/metrics", "/healthz", "/readyz"]) {
      const answer = await raw("GET", path, { headers: { host: "prometheus.internal:9464" } });
      expect({ path, status: answer.status }).toEqual({ path, status: 200 });
    }
  });

  it("lets the token guard the API when api.tokens are set: any Host, as behind a proxy", async () => {
    const runtime = {
      ...h.app.runtime,
      config: { ...h.app.runtime.config, api: { ...h.app.runtime.config.api, tokens: [TOKEN] } },
    };
    const guarded = await serve(runtime);
    try {
      const at = Number(new URL(guarded.url).port);
      const headers = { host: "gleaner.example.com", authorization: `Bearer ${TOKEN}` };
      expect((await raw("GET", "/v1/jobs", { headers, at })).status).toBe(200);
      const noToken = await raw("GET", "/v1/jobs", {
        headers: { host: "gleaner.example.com" },
        at,
      });
      expect(noToken.status).toBe(401);
    } finally {
      await guarded.close();
    }
  });
});

describe("cross-origin state-changing requests", () => {
  it("refuses a POST whose Origin is another site, and says why", async () => {
    const id = await submitJob();
    for (const origin of ["http://evil.example", "null", `http://localhost:${port + 1}`]) {
      const answer = await raw("POST", `/v1/jobs/${id}/cancel`, { headers: { origin } });
      expect({ origin, status: answer.status }).toEqual({ origin, status: 403 });
      expect(answer.json.error).toMatch(/Origin/);
    }
    expect((await raw("GET", `/v1/jobs/${id}`)).json.status).toBe("active");

    const submitted = await raw("POST", "/v1/jobs", {
      headers: { origin: "http://evil.example", "content-type": "application/json" },
      body: JSON.stringify({ pipeline: "companies", rows: [{ name: "evil", domain: "evil" }] }),
    });
    expect(submitted.status).toBe(403);
    const [count] = await h.query<{ n: number }>(
      "select count(*)::int as n from companies where name = 'evil'",
    );
    expect(count?.n).toBe(0);
  });

  it("refuses a POST a browser marks Sec-Fetch-Site: cross-site", async () => {
    const id = await submitJob();
    const answer = await raw("POST", `/v1/jobs/${id}/cancel`, {
      headers: { "sec-fetch-site": "cross-site" },
    });
    expect(answer.status).toBe(403);
    expect(answer.json.error).toMatch(/Sec-Fetch-Site/);
    expect((await raw("GET", `/v1/jobs/${id}`)).json.status).toBe("active");
  });

  it("refuses the content types an HTML form can send, with or without an Origin", async () => {
    const id = await submitJob();
    for (const type of [
      "application/x-www-form-urlencoded",
      "multipart/form-data; boundary=x",
      "text/plain",
    ]) {
      const answer = await raw("POST", `/v1/jobs/${id}/cancel`, {
        headers: { "content-type": type },
        body: "a=b",
      });
      expect({ type, status: answer.status }).toEqual({ type, status: 415 });
      expect(answer.json.error).toMatch(/form/);
    }
    expect((await raw("GET", `/v1/jobs/${id}`)).json.status).toBe("active");
  });

  it("accepts the same requests from the API's own origin and from clients that send none", async () => {
    const id = await submitJob();
    const own = await raw("POST", `/v1/jobs/${id}/cancel`, {
      headers: { origin: `http://127.0.0.1:${port}`, "sec-fetch-site": "same-origin" },
    });
    expect(own.status).toBe(200);
    expect(own.json.status).toBe("cancelled");
    const curl = await raw("POST", `/v1/jobs/${id}/resume`);
    expect(curl.status).toBe(200);
    expect(curl.json.status).toBe("active");
  });
});

describe("request bodies", () => {
  /**
   * Sends a chunked body (no Content-Length) of `size` bytes and does not end the request
   * unless `end`: the server has to answer while the client is still sending.
   */
  function chunked(size: number, end: boolean, type = "text/csv"): Promise<RawAnswer> {
    return new Promise((resolve, reject) => {
      const req = request(
        {
          host: "127.0.0.1",
          port,
          method: "POST",
          path: "/v1/jobs?pipeline=companies",
          headers: { "content-type": type, "transfer-encoding": "chunked" },
        },
        (res) => {
          let body = "";
          res.setEncoding("utf8");
          res.on("data", (chunk: string) => (body += chunk));
          res.on("end", () =>
            resolve({
              status: res.statusCode ?? 0,
              headers: res.headers,
              body,
              json: JSON.parse(body) as RawAnswer["json"],
            }),
          );
        },
      );
      req.setTimeout(10_000, () => req.destroy(new Error("no answer to the chunked POST")));
      // Writes after the server refused and closed fail; the answer is what counts.
      req.on("error", reject);
      const header = "name,domain\n";
      req.write(header);
      let sent = header.length;
      let i = 0;
      while (sent < size) {
        const line = `row${i++},d.example\n`;
        req.write(line);
        sent += line.length;
      }
      if (end) req.end();
    });
  }

  it("answers 413 to a chunked body as soon as it passes the limit, then closes", async () => {
    const answer = await chunked(LIMIT + 200, false);
    expect(answer.status).toBe(413);
    expect(answer.json.error).toMatch(/4096-byte limit \(api\.max_body_bytes\)/);
    expect(answer.headers.connection).toBe("close");
    const [count] = await h.query<{ n: number }>(
      "select count(*)::int as n from companies where name like 'row%'",
    );
    expect(count?.n).toBe(0);
  });

  it("gets the 413 to a client that keeps uploading megabytes past the limit", async () => {
    // Closing the socket at once while the client still sends makes the kernel reset the
    // connection, and the reset can discard the 413 before the client reads it.
    const limit = 10 * 1024 * 1024; // the default api.max_body_bytes
    const runtime = {
      ...h.app.runtime,
      config: {
        ...h.app.runtime.config,
        api: { ...h.app.runtime.config.api, maxBodyBytes: limit },
      },
    };
    const big = await serve(runtime);
    const upload = () =>
      new Promise<number>((resolve, reject) => {
        const req = request(
          `${big.url}/v1/jobs?pipeline=companies`,
          {
            method: "POST",
            headers: { "content-type": "text/csv", "transfer-encoding": "chunked" },
          },
          (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          },
        );
        req.setTimeout(10_000, () => req.destroy(new Error("no answer to the endless upload")));
        req.on("error", reject);
        const chunk = Buffer.from("x,y\n".repeat(16_384));
        let sent = 0;
        const pump = (): void => {
          while (!req.destroyed && sent < 8 * limit) {
            sent += chunk.length;
            if (!req.write(chunk)) return void req.once("drain", pump);
          }
          if (!req.destroyed) req.end();
        };
        req.write("name,domain\n");
        pump();
      });
    try {
      for (let round = 0; round < 3; round++) expect(await upload()).toBe(413);
    } finally {
      await big.close();
    }
  });

  it("takes a chunked body under the limit", async () => {
    const answer = await chunked(LIMIT - 200, true);
    expect(answer.status).toBe(201);
    expect(answer.json.total).toBeGreaterThan(100);
  });

  it("answers 413 to a declared Content-Length over the limit, then closes", async () => {
    const answer = await raw("POST", "/v1/jobs?pipeline=companies", {
      headers: { "content-type": "text/csv" },
      body: "name,domain\n" + "x,y\n".repeat(LIMIT / 2),
    });
    expect(answer.status).toBe(413);
    expect(answer.headers.connection).toBe("close");
  });
});

describe("paths", () => {
  it("answers every path that climbs, hides a slash or is badly encoded, never leaving it hanging", async () => {
    const cases: [string, string, number][] = [
      ["GET", "/v1/../metrics", 400],
      ["GET", "/v1/%2e%2e/healthz", 400],
      ["GET", "/v1/%2E%2E/%2e%2e/etc/passwd", 400],
      ["GET", "/v1/jobs/..", 400],
      ["GET", "/v1/jobs/%2e%2e", 400],
      ["GET", "/v1/./jobs", 400],
      ["GET", "/v1/jobs/.%2e/jobs", 400],
      ["GET", "/v1\\..\\metrics", 400],
      ["GET", "/%2e%2e/", 400],
      ["GET", "/openapi.json/..", 400],
      ["GET", "/v1/jobs/%zz", 400],
      ["GET", "/v1/pipelines/%E0%A4%A/report", 400],
      ["GET", "/v1/jobs/a%2fb", 400],
      ["GET", "/v1/pipelines/companies%2F..%2Fx/report", 400],
      ["GET", "/v1/jobs/%00", 400],
      ["HEAD", "/", 405],
      ["POST", "/openapi.json", 405],
      ["PUT", "/", 405],
      ["GET", "/v1/nothing", 404],
      ["GET", "/nothing/%2e", 400],
    ];
    for (const [method, path, status] of cases) {
      const answer = await raw(method, path);
      expect({ method, path, status: answer.status }).toEqual({ method, path, status });
    }
  });

  it("names the problem in a 400", async () => {
    expect((await raw("GET", "/v1/%2e%2e/healthz")).json.error).toMatch(/"\.\." segment/);
    expect((await raw("GET", "/v1/jobs/%zz")).json.error).toMatch(/malformed percent-encoding/);
    expect((await raw("GET", "/v1/jobs/a%2fb")).json.error).toMatch(/encoded "\/"/);
    expect((await raw("GET", "/corpus/x/%2e%2e/secret")).body).toMatch(/"\.\." segment/);
  });
});
