import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { batchApiBackends } from "../src/config/batch-backends.ts";
import { ConfigError } from "../src/config/config-error.ts";
import { parseConfig } from "../src/config/load-config.ts";
import { applyEndedBatches } from "../src/llm/batch/apply-llm-batches.ts";
import { submitDueBatches } from "../src/llm/batch/submit-llm-batches.ts";
import { openAiClient } from "../src/llm/llm-backend.ts";
import type { LlmBackendConfig } from "../src/llm/llm-types.ts";
import { stageFingerprints } from "../src/pipeline/stage-reuse.ts";
import { startFakeBatchApi, type FakeBatchApi } from "./support/fake-batch-api.ts";
import { rowIdsInPrompt, rowText } from "./support/fake-llm-server.ts";
import { startHarness, type Harness } from "./support/gleaner-harness.ts";

/**
 * A stage's `mode` overrides its backends' for that stage only: a `mode: batch` stage on a live
 * backend queues its calls for the Batch API (submitted and applied like a batch backend's), and
 * a `mode: live` stage on a batch backend calls it live. Against a fake OpenAI API on loopback
 * that answers both live calls and batches.
 */

let api: FakeBatchApi;
let h: Harness;

const CONFIG = (url: string, queuedMode = "batch") => `
llm:
  cache_ttl: 0s
  backends:
    - { name: api, base_url: ${url}, model: fake, batch_window: 1h }
    - { name: bulk, base_url: ${url}, model: fake, mode: batch }
pipelines:
  queued:
    table: public.queued
    inputs: [text]
    outputs: { label: { type: text, description: "A label" } }
    stages:
      - { name: label, kind: llm, backends: [api], mode: ${queuedMode}, prompt: "Label: {{text}}", outputs: [label] }
  urgent:
    table: public.urgent
    inputs: [text]
    outputs: { label: { type: text, description: "A label" } }
    stages:
      - { name: label, kind: llm, backends: [bulk], mode: live, prompt: "Label: {{text}}", outputs: [label] }
`;

beforeAll(async () => {
  api = await startFakeBatchApi();
  api.answer(({ prompt }) => ({
    content: {
      rows: rowIdsInPrompt(prompt).map((id) => ({
        id,
        label: { value: `${rowText(prompt, id).replace(/^Label: /, "")}!`, confidence: 0.9 },
      })),
    },
  }));
  h = await startHarness("stage_mode", CONFIG(api.url));
});

afterAll(async () => {
  await h?.close();
  await api?.close();
});

const chatCalls = () => api.calls.filter((c) => c.path === "/chat/completions").length;

describe("a stage's mode", () => {
  it("is live or batch, named in the error otherwise", () => {
    expect(() => parseConfig(CONFIG("http://127.0.0.1:9/v1", "sometimes"))).toThrow(ConfigError);
    expect(() => parseConfig(CONFIG("http://127.0.0.1:9/v1", "sometimes"))).toThrow(
      /pipelines\.queued\.stages\[0\]\.mode.*must be live or batch/,
    );
  });

  it("changes neither the pipeline's version nor its stage fingerprints", () => {
    const batch = parseConfig(CONFIG("http://127.0.0.1:9/v1", "batch"));
    const live = parseConfig(CONFIG("http://127.0.0.1:9/v1", "live"));
    const [a, b] = [batch, live].map((c) => c.pipelines.find((p) => p.name === "queued")!);
    expect(a?.version).toBe(b?.version);
    expect(stageFingerprints(a!, batch.backends)).toEqual(stageFingerprints(b!, live.backends));
    // Only the stage makes `api` a Batch API backend.
    expect(batchApiBackends(batch).map((x) => x.name)).toEqual(["api", "bulk"]);
    expect(batchApiBackends(live).map((x) => x.name)).toEqual(["bulk"]);
  });

  it("batch: queues a live backend's calls for the Batch API, then completes the rows", async () => {
    await h.query("insert into queued (text) values ('a'), ('b')");
    await h.drain();
    expect(chatCalls()).toBe(0);
    const waiting = await h.query<{ enrichment_status: string; outcome: string }>(
      "select enrichment_status, enrichment_state->'last_run'->>'outcome' as outcome from queued",
    );
    expect(waiting).toEqual([
      { enrichment_status: "pending", outcome: "waiting_for_batch" },
      { enrichment_status: "pending", outcome: "waiting_for_batch" },
    ]);
    const backend = {
      ...(h.app.runtime.config.backends.find((b) => b.name === "api") as LlmBackendConfig),
      batch_window_ms: 0,
    };
    const db = h.app.database.db;
    const schema = h.app.runtime.config.schema;
    expect(await submitDueBatches(db, schema, backend, openAiClient(backend))).toBe(1);
    expect(
      await applyEndedBatches(
        db,
        schema,
        h.app.runtime.config.workerSchema,
        backend,
        openAiClient(backend),
        (name) => Promise.resolve(h.app.runtime.pipelines.get(name)?.pipeline),
        () => {},
      ),
    ).toEqual({ applied: 1, resumed: 2 });
    await h.drain();
    const done = await h.query<{ label: string; enrichment_status: string }>(
      "select label, enrichment_status from queued order by id",
    );
    expect(done).toEqual([
      { label: "a!", enrichment_status: "done" },
      { label: "b!", enrichment_status: "done" },
    ]);
    expect(chatCalls()).toBe(0);
  });

  it("live: calls a batch backend live for that stage", async () => {
    await h.query("insert into urgent (text) values ('x'), ('y')");
    await h.drain();
    const done = await h.query<{ label: string; enrichment_status: string }>(
      "select label, enrichment_status from urgent order by id",
    );
    expect(done).toEqual([
      { label: "x!", enrichment_status: "done" },
      { label: "y!", enrichment_status: "done" },
    ]);
    expect(chatCalls()).toBe(1);
    expect(api.batches()).toHaveLength(1);
  });
});
