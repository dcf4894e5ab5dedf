import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { classifyLlmError } from "../src/llm/classify-llm-error.ts";
import { createLlmBackend } from "../src/llm/llm-backend.ts";
import { LlmError } from "../src/llm/llm-error.ts";
import type { LlmBackendConfig, LlmRequest } from "../src/llm/llm-types.ts";
import { answerRows, reply, startFakeLlm, type FakeLlm } from "./support/fake-llm-server.ts";

const SECRET = "sk-test-Zq8vSECRETkey0123456789";

let llm: FakeLlm;

beforeAll(async () => {
  llm = await startFakeLlm();
});
afterAll(async () => {
  await llm.close();
});
beforeEach(() => {
  llm.resetStats();
  llm.handle(answerRows(() => ({ label: { value: "positive", confidence: 0.9 } })));
});

function config(overrides: Partial<LlmBackendConfig> = {}): LlmBackendConfig {
  return {
    name: "primary",
    base_url: llm.url,
    model: "fake-small",
    timeout_ms: 5_000,
    max_concurrency: 4,
    structured_output: "json_schema",
    ...overrides,
  };
}

const schema = { type: "object", additionalProperties: false, required: [], properties: {} };

function request(overrides: Partial<LlmRequest> = {}): LlmRequest {
  return {
    system: "You label rows.",
    prompt: "Label these.\n### row a1\ntext one\n### row b2\ntext two\n",
    schema,
    schemaName: "label answer",
    ...overrides,
  };
}

async function failure(promise: Promise<unknown>): Promise<LlmError> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof LlmError) return err;
    throw new Error("expected an LlmError", { cause: err });
  }
  throw new Error("expected the call to fail");
}

describe("createLlmBackend against the fake server", () => {
  it("returns the parsed answer with tokens, cost and model", async () => {
    const backend = createLlmBackend(
      config({ temperature: 0, price: { input_per_million: 2, output_per_million: 10 } }),
    );
    const result = await backend.complete(request());
    expect(result.json).toEqual({
      rows: [
        { id: "a1", label: { value: "positive", confidence: 0.9 } },
        { id: "b2", label: { value: "positive", confidence: 0.9 } },
      ],
    });
    expect(result.model).toBe("fake-small");
    expect(result.inputTokens).toBeGreaterThan(0);
    expect(result.outputTokens).toBeGreaterThan(0);
    expect(result.costUsd).toBeCloseTo(
      (result.inputTokens * 2 + result.outputTokens * 10) / 1e6,
      12,
    );
    expect(result.durationMs).toBeGreaterThanOrEqual(0);

    const sent = llm.requests[0];
    expect(sent?.model).toBe("fake-small");
    expect(sent?.system).toBe("You label rows.");
    expect(sent?.prompt).toContain("### row a1");
    expect(sent?.body?.["temperature"]).toBe(0);
  });

  it("costs nothing without a price and omits temperature when not configured", async () => {
    const result = await createLlmBackend(config()).complete(request());
    expect(result.costUsd).toBe(0);
    expect(llm.requests[0]?.body).not.toHaveProperty("temperature");
  });

  it("sends a strict json_schema response_format", async () => {
    await createLlmBackend(config()).complete(request());
    expect(llm.requests[0]?.responseFormat).toEqual({
      type: "json_schema",
      json_schema: { name: "label_answer", schema, strict: true },
    });
  });

  it("sends json_object, or nothing, in the other modes", async () => {
    await createLlmBackend(config({ structured_output: "json_object" })).complete(request());
    await createLlmBackend(config({ structured_output: "none" })).complete(request());
    expect(llm.requests[0]?.responseFormat).toEqual({ type: "json_object" });
    expect(llm.requests[1]?.body).not.toHaveProperty("response_format");
  });

  it("auto mode falls back when json_schema is rejected, and remembers it", async () => {
    llm.handle((req) => {
      const type = (req.responseFormat as { type?: string } | undefined)?.type;
      if (type === "json_schema") {
        return reply.status(400, {
          error: { message: "response_format json_schema is not supported by this model" },
        });
      }
      return reply.json({ rows: [] });
    });
    const backend = createLlmBackend(config({ structured_output: "auto" }));
    expect((await backend.complete(request())).json).toEqual({ rows: [] });
    await backend.complete(request());
    const formats = llm.requests.map((r) => (r.responseFormat as { type: string }).type);
    expect(formats).toEqual(["json_schema", "json_object", "json_object"]);
  });

  it("auto mode goes down to no response_format at all", async () => {
    llm.handle((req) =>
      req.responseFormat === undefined
        ? reply.text('```json\n{"rows": []}\n```')
        : reply.status(400, {
            error: { message: "unsupported parameter", param: "response_format" },
          }),
    );
    const backend = createLlmBackend(config({ structured_output: "auto" }));
    expect((await backend.complete(request())).json).toEqual({ rows: [] });
    expect(llm.requests).toHaveLength(3);
  });

  it("auto mode does not fall back on an unrelated 400", async () => {
    llm.handle(() => reply.status(400, { error: { message: "context length exceeded" } }));
    const err = await failure(
      createLlmBackend(config({ structured_output: "auto" })).complete(request()),
    );
    expect(err).toMatchObject({ errorClass: "bad_request", permanent: true, status: 400 });
    expect(llm.requests).toHaveLength(1);
  });

  it.each([
    [{ "retry-after": "2" }, 2_000],
    [{ "retry-after-ms": "1500", "retry-after": "9" }, 1_500],
  ])("classifies 429 as rate_limited with retryAfterMs (%j)", async (headers, expected) => {
    llm.handle(() => reply.status(429, undefined, headers));
    const err = await failure(createLlmBackend(config()).complete(request()));
    expect(err).toMatchObject({
      errorClass: "rate_limited",
      permanent: false,
      status: 429,
      retryAfterMs: expected,
      backend: "primary",
    });
    expect(llm.requests).toHaveLength(1); // the openai client must not retry on its own
  });

  it.each([
    [500, "server_error", false],
    [503, "server_error", false],
    [401, "auth", true],
    [403, "auth", true],
    [400, "bad_request", true],
    [404, "not_found", true],
  ] as const)("classifies HTTP %i as %s (permanent %s)", async (status, errorClass, permanent) => {
    llm.handle(() => reply.status(status));
    const err = await failure(createLlmBackend(config()).complete(request()));
    expect(err).toMatchObject({ errorClass, permanent, status });
  });

  it("times out a hanging server as transient timeout", async () => {
    llm.handle(() => reply.hang());
    const started = Date.now();
    const err = await failure(createLlmBackend(config({ timeout_ms: 200 })).complete(request()));
    expect(err).toMatchObject({ errorClass: "timeout", permanent: false });
    expect(Date.now() - started).toBeLessThan(3_000);
  });

  it("classifies connection refused as transient connection", async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const { port } = closed.address() as AddressInfo;
    await new Promise<void>((resolve, reject) => closed.close((e) => (e ? reject(e) : resolve())));
    const backend = createLlmBackend(config({ base_url: `http://127.0.0.1:${port}/v1` }));
    const err = await failure(backend.complete(request()));
    expect(err).toMatchObject({ errorClass: "connection", permanent: false });
    expect(err.message).toMatch(/ECONNREFUSED/);
  });

  it("classifies a dropped connection as connection", async () => {
    llm.handle(() => reply.reset());
    const err = await failure(createLlmBackend(config()).complete(request()));
    expect(err.errorClass).toBe("connection");
  });

  it("classifies broken JSON as invalid_output and keeps the tokens spent", async () => {
    llm.handle(() => reply.brokenJson());
    const err = await failure(
      createLlmBackend(config({ price: { input_per_million: 1, output_per_million: 1 } })).complete(
        request(),
      ),
    );
    expect(err).toMatchObject({ errorClass: "invalid_output", permanent: false });
    expect(err.usage?.inputTokens).toBeGreaterThan(0);
    expect(err.usage?.costUsd).toBeGreaterThan(0);
  });

  it("says when the answer was cut off at the token limit", async () => {
    llm.handle(() => reply.text('{"rows": [', { finishReason: "length" }));
    const err = await failure(createLlmBackend(config()).complete(request()));
    expect(err.message).toMatch(/token limit/);
  });

  it("treats an empty answer and a failing validate hook as invalid_output", async () => {
    llm.handle(() => reply.text(null));
    const backend = createLlmBackend(config());
    expect((await failure(backend.complete(request()))).errorClass).toBe("invalid_output");
    llm.handle(() => reply.json({ nope: true }));
    const validate = (): void => {
      throw new Error("no rows");
    };
    const err = await failure(backend.complete(request({ validate })));
    expect(err).toMatchObject({ errorClass: "invalid_output", message: "no rows" });
  });

  it("aborts an in-flight request and a request waiting for a slot", async () => {
    llm.handle(() => reply.hang());
    const backend = createLlmBackend(config({ max_concurrency: 1 }));
    const controller = new AbortController();
    const first = failure(backend.complete(request({ signal: controller.signal })));
    const second = failure(backend.complete(request({ signal: controller.signal })));
    await expect.poll(() => llm.inFlight()).toBe(1);
    controller.abort();
    expect(await first).toMatchObject({ errorClass: "aborted" });
    expect(await second).toMatchObject({ errorClass: "aborted" });
    expect(backend.inFlight()).toBe(0);
    expect(llm.requests).toHaveLength(1);
  });

  it("never has more than max_concurrency requests in flight", async () => {
    llm.handle(() => reply.delay(60, reply.json({ rows: [] })));
    const backend = createLlmBackend(config({ max_concurrency: 2 }));
    const calls = Array.from({ length: 7 }, () => backend.complete(request()));
    await expect.poll(() => backend.inFlight()).toBe(2);
    await Promise.all(calls);
    expect(llm.requests).toHaveLength(7);
    expect(llm.maxInFlight()).toBe(2);
    expect(backend.inFlight()).toBe(0);
  });

  it("sends the API key as a bearer token and never puts it in errors", async () => {
    llm.handle(() =>
      reply.status(401, { error: { message: `Incorrect API key provided: ${SECRET}` } }),
    );
    const err = await failure(createLlmBackend(config({ api_key: SECRET })).complete(request()));
    expect(llm.requests[0]?.headers.authorization).toBe(`Bearer ${SECRET}`);
    expect(err.errorClass).toBe("auth");
    expect(String(err)).not.toContain(SECRET);
    expect(err.message).toContain("***");
    expect(JSON.stringify(err)).not.toContain(SECRET);
  });

  it("sends no Authorization header without a key, and passes headers and query (Azure)", async () => {
    const backend = createLlmBackend(
      config({
        headers: { "api-key": "azure-key-abcdef" },
        query: { "api-version": "2024-10-21" },
      }),
    );
    await backend.complete(request());
    const sent = llm.requests[0];
    expect(sent?.headers.authorization).toBeUndefined();
    expect(sent?.headers["api-key"]).toBe("azure-key-abcdef");
    expect(sent?.path).toBe("/v1/chat/completions?api-version=2024-10-21");
  });

  it("rejects a bad max_concurrency", () => {
    expect(() => createLlmBackend(config({ max_concurrency: 0 }))).toThrow(/positive integer/);
  });
});

describe("classifyLlmError", () => {
  it("maps non-HTTP errors", () => {
    expect(classifyLlmError(new DOMException("x", "AbortError")).errorClass).toBe("aborted");
    expect(classifyLlmError(new DOMException("x", "TimeoutError")).errorClass).toBe("timeout");
    expect(classifyLlmError(new SyntaxError("bad")).errorClass).toBe("invalid_output");
    const refused = Object.assign(new Error("connect"), { code: "ECONNREFUSED" });
    expect(classifyLlmError(new TypeError("fetch failed", { cause: refused })).errorClass).toBe(
      "connection",
    );
    expect(classifyLlmError("weird").errorClass).toBe("unknown");
  });

  it("keeps the original error as cause and adds the backend name", () => {
    const original = new Error("boom");
    const err = classifyLlmError(original, { backend: "b1" });
    expect(err.cause).toBe(original);
    expect(err.backend).toBe("b1");
    expect(err.permanent).toBe(false);
  });
});
