import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { callCascade } from "../src/llm/call-cascade.ts";
import { createLlmBackend } from "../src/llm/llm-backend.ts";
import { LlmError } from "../src/llm/llm-error.ts";
import type { LlmBackend, LlmBackendConfig, LlmRequest } from "../src/llm/llm-types.ts";
import {
  answerRows,
  reply,
  startFakeLlm,
  type FakeLlm,
  type Reply,
} from "./support/fake-llm-server.ts";

const SECRET = "sk-cascade-SECRET-9f8e7d6c5b4a";

let llm: FakeLlm;
/** What each model (= backend) answers; unknown models answer rows. */
let script: Record<string, () => Reply> = {};

beforeAll(async () => {
  llm = await startFakeLlm();
});
afterAll(async () => {
  await llm.close();
});
beforeEach(() => {
  llm.resetStats();
  script = {};
  const rows = answerRows((id) => ({ label: { value: `label-${id}`, confidence: 1 } }));
  llm.handle((req) => script[req.model ?? ""]?.() ?? rows(req));
});

function backend(name: string, overrides: Partial<LlmBackendConfig> = {}): LlmBackend {
  return createLlmBackend({
    name,
    base_url: llm.url,
    api_key: SECRET,
    model: `model-${name}`,
    timeout_ms: 5_000,
    max_concurrency: 2,
    structured_output: "json_schema",
    price: { input_per_million: 1, output_per_million: 2 },
    ...overrides,
  });
}

function request(overrides: Partial<LlmRequest> = {}): LlmRequest {
  return {
    prompt: "### row r1\nhello\n",
    schema: { type: "object" },
    schemaName: "answer",
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
  throw new Error("expected the cascade to fail");
}

describe("callCascade", () => {
  it("returns the first backend's answer with one attempt", async () => {
    const result = await callCascade([backend("a"), backend("b")], request());
    expect(result).toMatchObject({
      json: { rows: [{ id: "r1", label: { value: "label-r1", confidence: 1 } }] },
      backend: "a",
      model: "model-a",
    });
    expect(result.attempts).toHaveLength(1);
    expect(result.attempts[0]).toMatchObject({ backend: "a", outcome: "ok" });
    expect(new Date(result.attempts[0]?.startedAt ?? "").toISOString()).toBe(
      result.attempts[0]?.startedAt,
    );
    expect(llm.requests).toHaveLength(1);
  });

  it("falls back from a failing primary and records both attempts", async () => {
    script["model-a"] = () => reply.status(500);
    const result = await callCascade([backend("a"), backend("b")], request());
    expect(result.backend).toBe("b");
    expect(result.attempts.map((a) => [a.backend, a.outcome, a.errorClass])).toEqual([
      ["a", "error", "server_error"],
      ["b", "ok", undefined],
    ]);
    expect(result.attempts[0]).toMatchObject({ model: "model-a", status: 500, inputTokens: 0 });
    expect(result.attempts[0]?.message).toMatch(/500/);
    expect(result.attempts[0]?.durationMs).toBeGreaterThanOrEqual(0);
  });

  it("sums usage over failed and successful attempts", async () => {
    script["model-a"] = () => reply.brokenJson();
    const result = await callCascade([backend("a"), backend("b")], request());
    const [failed, ok] = result.attempts;
    expect(failed).toMatchObject({ errorClass: "invalid_output", outcome: "error" });
    expect(failed?.inputTokens).toBeGreaterThan(0);
    expect(failed?.outputTokens).toBeGreaterThan(0);
    expect(result.usage).toEqual({
      inputTokens: (failed?.inputTokens ?? 0) + (ok?.inputTokens ?? 0),
      outputTokens: (failed?.outputTokens ?? 0) + (ok?.outputTokens ?? 0),
      costUsd: (failed?.costUsd ?? 0) + (ok?.costUsd ?? 0),
    });
    expect(result.usage.costUsd).toBeGreaterThan(0);
  });

  it("moves on when the validate hook rejects the answer", async () => {
    script["model-a"] = () => reply.json({ wrong: true });
    const validate = (json: unknown): void => {
      if (!(typeof json === "object" && json !== null && "rows" in json))
        throw new Error("no rows");
    };
    const result = await callCascade([backend("a"), backend("b")], request({ validate }));
    expect(result.backend).toBe("b");
    expect(result.attempts[0]).toMatchObject({ errorClass: "invalid_output", message: "no rows" });
  });

  it("throws an LlmError with every attempt when all backends fail", async () => {
    script["model-a"] = () => reply.status(429, undefined, { "retry-after": "3" });
    script["model-b"] = () => reply.status(429, undefined, { "retry-after": "1" });
    script["model-c"] = () =>
      reply.status(401, { error: { message: `Incorrect API key provided: ${SECRET}` } });
    const err = await failure(callCascade([backend("a"), backend("b"), backend("c")], request()));
    expect(err.attempts.map((a) => a.errorClass)).toEqual(["rate_limited", "rate_limited", "auth"]);
    expect(err.errorClass).toBe("auth"); // the last attempt's class
    expect(err.permanent).toBe(false); // the 429s may succeed later
    expect(err.retryAfterMs).toBe(3_000);
    expect(err.message).toMatch(/all 3 LLM backends failed/);
    expect(String(err)).not.toContain(SECRET);
    expect(JSON.stringify(err.attempts)).not.toContain(SECRET);
  });

  it("is permanent only when every attempt was permanent", async () => {
    script["model-a"] = () => reply.status(401);
    script["model-b"] = () => reply.status(400);
    const err = await failure(callCascade([backend("a"), backend("b")], request()));
    expect(err).toMatchObject({ errorClass: "bad_request", permanent: true });
    expect(err.retryAfterMs).toBeUndefined();
  });

  it("stops at once when the signal is already aborted", async () => {
    const controller = new AbortController();
    controller.abort();
    const err = await failure(callCascade([backend("a")], request({ signal: controller.signal })));
    expect(err).toMatchObject({ errorClass: "aborted", attempts: [] });
    expect(llm.requests).toHaveLength(0);
  });

  it("stops without trying the next backend when aborted mid-call", async () => {
    script["model-a"] = () => reply.hang();
    const controller = new AbortController();
    const pending = failure(
      callCascade([backend("a"), backend("b")], request({ signal: controller.signal })),
    );
    await expect.poll(() => llm.inFlight()).toBe(1);
    controller.abort();
    const err = await pending;
    expect(err.errorClass).toBe("aborted");
    expect(err.attempts).toHaveLength(1);
    expect(err.attempts[0]).toMatchObject({ backend: "a", errorClass: "aborted" });
    expect(llm.requests).toHaveLength(1);
  });

  it("falls back on a timeout", async () => {
    script["model-a"] = () => reply.hang();
    const result = await callCascade([backend("a", { timeout_ms: 200 }), backend("b")], request());
    expect(result.attempts.map((a) => a.errorClass ?? a.outcome)).toEqual(["timeout", "ok"]);
  });

  it("refuses an empty backend list", async () => {
    const err = await failure(callCascade([], request()));
    expect(err).toMatchObject({ errorClass: "bad_request", permanent: true });
  });
});
