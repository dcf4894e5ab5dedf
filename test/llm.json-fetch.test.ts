import http from "node:http";
import type { AddressInfo } from "node:net";
import { gzipSync } from "node:zlib";
import { afterAll, beforeAll, expect, it } from "vitest";
import { classifyLlmError } from "../src/llm/classify-llm-error.ts";
import { jsonFetch } from "../src/llm/json-fetch.ts";

/** A loopback server whose routes answer as an LLM server might, and worse. */
let server: http.Server;
let base: string;
const seen: { method?: string; headers: http.IncomingHttpHeaders; body: string }[] = [];

beforeAll(async () => {
  server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString();
      seen.push({ method: req.method, headers: req.headers, body });
      if (req.url === "/echo") {
        res.writeHead(201, { "content-type": "application/json", "x-request-id": "r-1" });
        res.end(JSON.stringify({ got: JSON.parse(body) as unknown }));
      } else if (req.url === "/gzip") {
        res.writeHead(200, { "content-type": "application/json", "content-encoding": "gzip" });
        res.end(gzipSync(JSON.stringify({ packed: true })));
      } else if (req.url === "/trickle") {
        // Headers at once, then a body that never ends.
        res.writeHead(200, { "content-type": "application/json" });
        res.write('{"never":');
      } else if (req.url === "/empty") {
        res.writeHead(204);
        res.end();
      } else if (req.url === "/limited") {
        res.writeHead(429, { "retry-after": "7", "content-type": "application/json" });
        res.end('{"error":{"message":"slow down"}}');
      } else {
        res.writeHead(200, { "content-type": "text/plain" });
        res.end(
          `${req.headers["content-type"] ?? ""}|${body.includes("hello.jsonl") ? "file" : ""}`,
        );
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

it("sends the method, headers and body, and hands back status, headers and body", async () => {
  const res = await jsonFetch(`${base}/echo`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: "Bearer k" },
    body: JSON.stringify({ q: "héllo" }),
  });
  expect(res.status).toBe(201);
  expect(res.headers.get("x-request-id")).toBe("r-1");
  expect(await res.json()).toEqual({ got: { q: "héllo" } });
  const last = seen.at(-1)!;
  expect(last.method).toBe("POST");
  expect(last.headers.authorization).toBe("Bearer k");
});

it("decodes a gzip body and drops the wire's encoding from the headers", async () => {
  const res = await jsonFetch(`${base}/gzip`);
  expect(res.headers.get("content-encoding")).toBeNull();
  expect(await res.json()).toEqual({ packed: true });
});

it("rejects with an AbortError when aborted while the body trickles in", async () => {
  const controller = new AbortController();
  const pending = jsonFetch(`${base}/trickle`, { signal: controller.signal });
  setTimeout(() => controller.abort(), 50);
  const error = await pending.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(DOMException);
  expect((error as DOMException).name).toBe("AbortError");
});

it("answers a 204 without a body, and a 429 with its Retry-After", async () => {
  expect((await jsonFetch(`${base}/empty`)).status).toBe(204);
  const limited = await jsonFetch(`${base}/limited`, { method: "POST", body: "{}" });
  expect(limited.status).toBe(429);
  expect(limited.headers.get("retry-after")).toBe("7");
  expect(await limited.text()).toContain("slow down");
});

it("leaves a multipart upload (the Batch API's file) to the global fetch", async () => {
  const form = new FormData();
  form.append("file", new Blob(['{"a":1}\n']), "hello.jsonl");
  const res = await jsonFetch(`${base}/upload`, { method: "POST", body: form });
  const [type, file] = (await res.text()).split("|");
  expect(type).toMatch(/^multipart\/form-data; boundary=/);
  expect(file).toBe("file");
});

it("sends a request again when the kept-alive socket it went out on was closed by the server", async () => {
  // The server drops the second request on each connection without a word, as a server whose
  // idle timeout ends just as a socket is reused does.
  const perSocket = new WeakMap<object, number>();
  let connections = 0;
  const closing = http.createServer((req, res) => {
    const n = (perSocket.get(req.socket) ?? 0) + 1;
    perSocket.set(req.socket, n);
    if (n === 1) connections++;
    if (n > 1) {
      req.socket.destroy();
      return;
    }
    req.resume();
    req.on("end", () => res.writeHead(200, { "content-type": "application/json" }).end('{"n":1}'));
  });
  await new Promise<void>((r) => closing.listen(0, "127.0.0.1", r));
  const url = `http://127.0.0.1:${(closing.address() as AddressInfo).port}/`;
  try {
    expect(await (await jsonFetch(url, { method: "POST", body: "{}" })).json()).toEqual({ n: 1 });
    expect(await (await jsonFetch(url, { method: "POST", body: "{}" })).json()).toEqual({ n: 1 });
    expect(connections).toBe(2);
  } finally {
    closing.closeAllConnections();
    await new Promise((r) => closing.close(r));
  }
});

it("fails an unreachable server with a network error the LLM error classes recognise", async () => {
  const closed = http.createServer();
  await new Promise<void>((r) => closed.listen(0, "127.0.0.1", r));
  const port = (closed.address() as AddressInfo).port;
  await new Promise((r) => closed.close(r));
  const error = await jsonFetch(`http://127.0.0.1:${port}/`).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect((error as NodeJS.ErrnoException).code).toBe("ECONNREFUSED");
  expect(classifyLlmError(error, { backend: "b" }).errorClass).toBe("connection");
});
