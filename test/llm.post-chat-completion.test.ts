import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { APIConnectionError, APIUserAbortError, InternalServerError } from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LlmBackendConfig } from "../src/llm/llm-types.ts";
import { chatCompletionsEndpoint, postChatCompletion } from "../src/llm/post-chat-completion.ts";

interface Seen {
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** A server on loopback answering each request with the next canned reply. */
let server: Server;
let base: string;
const seen: Seen[] = [];
let answer: (res: import("node:http").ServerResponse) => void = (res) => res.end();

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = "";
    req.on("data", (chunk: Buffer) => (body += chunk.toString()));
    req.on("end", () => {
      seen.push({ url: req.url ?? "", headers: req.headers, body });
      answer(res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
});

function config(overrides: Partial<LlmBackendConfig> = {}): LlmBackendConfig {
  return {
    name: "primary",
    base_url: `${base}/v1`,
    model: "m",
    timeout_ms: 5_000,
    max_concurrency: 4,
    structured_output: "json_schema",
    ...overrides,
  };
}

const body = { model: "m", messages: [{ role: "user" as const, content: "hi" }] };

describe("postChatCompletion", () => {
  it("posts to <base_url>/chat/completions with the query, whether base_url ends in / or not", async () => {
    answer = (res) => {
      res.writeHead(200, { "content-type": "application/json; charset=utf-8" });
      res.end(JSON.stringify({ choices: [] }));
    };
    for (const base_url of [`${base}/v1`, `${base}/v1/`]) {
      const endpoint = chatCompletionsEndpoint(
        config({ base_url, query: { "api-version": "x y" } }),
      );
      expect(await postChatCompletion(endpoint, body, new AbortController().signal)).toEqual({
        choices: [],
      });
      const last = seen.at(-1)!;
      expect(last.url).toBe("/v1/chat/completions?api-version=x+y");
      expect(JSON.parse(last.body)).toEqual(body);
      expect(last.headers["user-agent"]).toMatch(/^Gleaner\//);
      expect(last.headers["content-type"]).toBe("application/json");
    }
  });

  it("lets the backend's headers replace the bearer token, whatever their case", async () => {
    const endpoint = chatCompletionsEndpoint(
      config({ api_key: "k1", headers: { Authorization: "Token other" } }),
    );
    await postChatCompletion(endpoint, body, new AbortController().signal);
    expect(seen.at(-1)!.headers.authorization).toBe("Token other");
  });

  it("throws the status's SDK error with the server's message and headers", async () => {
    answer = (res) => {
      res.writeHead(503, { "content-type": "application/json", "retry-after": "7" });
      res.end(JSON.stringify({ error: { message: "overloaded, try later" } }));
    };
    const error = await postChatCompletion(
      chatCompletionsEndpoint(config()),
      body,
      new AbortController().signal,
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InternalServerError);
    expect((error as InternalServerError).message).toContain("overloaded, try later");
    expect((error as InternalServerError).headers?.get("retry-after")).toBe("7");
  });

  it("keeps a non-JSON error body as the message", async () => {
    answer = (res) => {
      res.writeHead(502, { "content-type": "text/html" });
      res.end("<h1>Bad gateway</h1>");
    };
    const error = await postChatCompletion(
      chatCompletionsEndpoint(config()),
      body,
      new AbortController().signal,
    ).catch((e: unknown) => e);
    expect(String((error as Error).message)).toContain("<h1>Bad gateway</h1>");
  });

  it("hands a 200 that is not JSON on as text", async () => {
    answer = (res) => {
      res.writeHead(200, { "content-type": "text/html" });
      res.end("<html>login page</html>");
    };
    const answerText = await postChatCompletion(
      chatCompletionsEndpoint(config()),
      body,
      new AbortController().signal,
    );
    expect(answerText).toBe("<html>login page</html>");
  });

  it("throws APIUserAbortError for its own abort and APIConnectionError when nobody listens", async () => {
    const aborted = new AbortController();
    answer = () => aborted.abort();
    const abortError = await postChatCompletion(
      chatCompletionsEndpoint(config()),
      body,
      aborted.signal,
    ).catch((e: unknown) => e);
    expect(abortError).toBeInstanceOf(APIUserAbortError);

    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const refused = await postChatCompletion(
      chatCompletionsEndpoint(config({ base_url: `http://127.0.0.1:${port}/v1` })),
      body,
      new AbortController().signal,
    ).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(APIConnectionError);
    expect(((refused as APIConnectionError).cause as NodeJS.ErrnoException).code).toBe(
      "ECONNREFUSED",
    );
  });
});
