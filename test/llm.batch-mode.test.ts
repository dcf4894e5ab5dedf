import { toFile } from "openai";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { applyEndedBatches } from "../src/llm/batch/apply-llm-batches.ts";
import { MARKER_KEY, submitDueBatches } from "../src/llm/batch/submit-llm-batches.ts";
import { openAiClient } from "../src/llm/llm-backend.ts";
import type { LlmBackendConfig } from "../src/llm/llm-types.ts";
import type { RowState } from "../src/pipeline/row-state.ts";
import { batchLines, openDueBatch } from "../src/sql/llm-batches.ts";
import { startFakeBatchApi, type FakeBatchApi, type LineAnswer } from "./support/fake-batch-api.ts";
import { rowIdsInPrompt, rowText } from "./support/fake-llm-server.ts";
import { startHarness, type Harness } from "./support/gleaner-harness.ts";
import { createMetrics } from "../src/metrics/create-metrics.ts";
import { parseSamples, value } from "./support/prometheus-text.ts";

/**
 * `mode: batch` through the real stage machine, PostgreSQL and a fake Batch API on loopback:
 * rows wait for their batch, any process submits and applies it, failures fail only their rows,
 * and nothing is applied twice.
 */

let api: FakeBatchApi;
let h: Harness;

beforeAll(async () => {
  api = await startFakeBatchApi();
  h = await startHarness(
    "batch_mode",
    `
llm:
  cache_ttl: 0s
  backends:
    - name: batchy
      base_url: ${api.url}
      model: fake
      timeout: 10s
      mode: batch
      batch_window: 1h
      price: { input_per_million: 1, output_per_million: 2 }
pipelines:
  notes:
    table: public.notes
    inputs: [text]
    outputs: { label: { type: text, description: "A label" } }
    batch_size: 3
    retry: { max_attempts: 3, delays: [1m] }
    stages:
      - { name: label, kind: llm, backends: [batchy], prompt: "Label: {{text}}", outputs: [label] }
`,
  );
});

afterAll(async () => {
  await h?.close();
  await api?.close();
});

const schema = (): string => h.app.runtime.config.schema;
/** The backend as configured, its window shortened so what is queued is due now. */
const backend = (): LlmBackendConfig => ({
  ...(h.app.runtime.config.backends[0] as LlmBackendConfig),
  batch_window_ms: 0,
});

beforeEach(async () => {
  await h.query("delete from notes");
  await h.query(`delete from ${schema()}.llm_batch_requests`);
  await h.query(`delete from ${schema()}.llm_batches`);
  api.mode("complete");
  api.answer(labelAll());
});

/** Labels every row `<text>!`; a row whose text says "poison" fails its whole line. */
function labelAll(): (line: { prompt: string }) => LineAnswer {
  return ({ prompt }) => {
    if (/poison/.test(prompt)) return { error: "the model choked", status: 500 };
    return {
      content: {
        rows: rowIdsInPrompt(prompt).map((id) => ({
          id,
          label: { value: `${rowText(prompt, id).replace(/^Label: /, "")}!`, confidence: 0.9 },
        })),
      },
    };
  };
}

interface NoteRow {
  text: string;
  label: string | null;
  enrichment_status: string;
  enrichment_attempts: number;
  enrichment_state: RowState;
}

async function notes(): Promise<NoteRow[]> {
  return h.query<NoteRow>(
    "select text, label, enrichment_status, enrichment_attempts, enrichment_state from notes order by id",
  );
}

async function insert(texts: string[]): Promise<void> {
  for (const text of texts) await h.query("insert into notes (text) values ($1)", [text]);
}

async function scrape(name: string, labels: Record<string, string> = {}): Promise<number> {
  const metrics = createMetrics(h.app.runtime);
  try {
    return value(parseSamples(await metrics.registry.metrics()), name, labels) ?? NaN;
  } finally {
    metrics.close();
  }
}

const apply = () =>
  applyEndedBatches(
    h.app.database.db,
    schema(),
    h.app.runtime.config.workerSchema,
    backend(),
    openAiClient(backend()),
    (name) => Promise.resolve(h.app.runtime.pipelines.get(name)?.pipeline),
    () => {},
  );

describe("batch mode", () => {
  it("completes rows end to end through one Batch API batch, at half the price", async () => {
    await insert(["a", "b", "c", "d", "e"]);
    await h.drain();
    // Nothing went out live; the rows wait, visibly, without spending an attempt.
    expect(api.calls).toEqual([]);
    const waiting = await notes();
    for (const row of waiting) {
      expect(row.enrichment_status).toBe("pending");
      expect(row.enrichment_attempts).toBe(0);
      expect(row.enrichment_state.batch?.request).toMatch(/^[0-9a-f-]{36}$/);
      expect(row.enrichment_state.last_run?.outcome).toBe("waiting_for_batch");
    }
    // Nor does the sweep take them again while they wait.
    expect(await h.sweep()).toBe(0);
    expect(await scrape("gleaner_llm_batch_rows_waiting", { pipeline: "notes" })).toBe(5);

    expect(
      await submitDueBatches(h.app.database.db, schema(), backend(), openAiClient(backend())),
    ).toBe(1);
    expect(api.batches()).toHaveLength(1);
    expect(api.batches()[0]?.lines).toBe(2); // 5 rows in chunks of 3: two requests
    expect(await scrape("gleaner_llm_batches_in_flight")).toBe(1);
    expect(await apply()).toEqual({ applied: 1, resumed: 5 });
    await h.drain();

    const done = await notes();
    expect(done.map((r) => [r.label, r.enrichment_status])).toEqual([
      ["a!", "done"],
      ["b!", "done"],
      ["c!", "done"],
      ["d!", "done"],
      ["e!", "done"],
    ]);
    for (const row of done) {
      expect(row.enrichment_attempts).toBe(1);
      expect(row.enrichment_state.batch).toBeUndefined();
      expect(row.enrichment_state.usage?.cost_usd).toBeGreaterThan(0);
    }
    // Each request's cost is half of what its tokens cost live.
    const requests = await h.query<{ saved_usd: number; consumed: boolean }>(
      `select saved_usd, consumed_at is not null as consumed from ${schema()}.llm_batch_requests`,
    );
    expect(requests).toHaveLength(2);
    for (const r of requests) expect(r.consumed).toBe(true);
    const spent = done.reduce((s, r) => s + (r.enrichment_state.usage?.cost_usd ?? 0), 0);
    const saved = requests.reduce((s, r) => s + r.saved_usd, 0);
    expect(spent).toBeCloseTo(saved, 9);
    expect(await scrape("gleaner_llm_batch_saved_usd")).toBeCloseTo(saved, 9);
    expect(await scrape("gleaner_llm_batches_in_flight")).toBe(0);
    expect(await scrape("gleaner_llm_batch_rows_waiting", { pipeline: "notes" })).toBe(0);
    expect(api.calls.some((c) => c.path.includes("chat/completions"))).toBe(false);
  });

  it("adopts a batch whose submission crashed after POST /batches, and another process applies it", async () => {
    await insert(["a", "b"]);
    await h.drain();
    const db = h.app.database.db;
    // The crashed process: recorded the batch, uploaded and created it, died before noting it.
    const opened = await openDueBatch(db, schema(), "batchy", 0, 100);
    expect(opened).toBeDefined();
    const client = openAiClient(backend());
    const lines = await batchLines(db, schema(), opened?.id ?? "");
    const jsonl = lines
      .map((l) =>
        JSON.stringify({
          custom_id: l.customId,
          method: "POST",
          url: "/v1/chat/completions",
          body: l.body,
        }),
      )
      .join("\n");
    const file = await client.files.create({
      file: await toFile(Buffer.from(jsonl), "crashed.jsonl"),
      purpose: "batch",
    });
    await client.batches.create({
      input_file_id: file.id,
      endpoint: "/v1/chat/completions",
      completion_window: "24h",
      metadata: { [MARKER_KEY]: opened?.marker ?? "" },
    });
    // A new process (its own client): the stale `submitting` batch is found by its marker, not
    // submitted a second time.
    expect(
      await submitDueBatches(db, schema(), backend(), openAiClient(backend()), {
        staleSubmittingMs: 0,
      }),
    ).toBe(1);
    const marked = api
      .batches()
      .filter(
        (b) => (b.metadata as Record<string, string> | null)?.[MARKER_KEY] === opened?.marker,
      );
    expect(marked).toHaveLength(1);
    expect(await apply()).toEqual({ applied: 1, resumed: 2 });
    await h.drain();
    expect((await notes()).map((r) => r.label)).toEqual(["a!", "b!"]);
  });

  it("submits a batch whose process crashed before POST /batches, once, when it is stale", async () => {
    await insert(["a"]);
    await h.drain();
    const db = h.app.database.db;
    // The crashed process only recorded the batch.
    const opened = await openDueBatch(db, schema(), "batchy", 0, 100);
    const before = api.batches().length;
    const submit = (staleSubmittingMs: number) =>
      submitDueBatches(db, schema(), backend(), openAiClient(backend()), { staleSubmittingMs });
    // Not stale yet: it may still be on its way from a live process.
    expect(await submit(3_600_000)).toBe(0);
    expect(await submit(0)).toBe(1);
    expect(await submit(0)).toBe(0);
    const marked = api
      .batches()
      .filter(
        (b) => (b.metadata as Record<string, string> | null)?.[MARKER_KEY] === opened?.marker,
      );
    expect(marked).toHaveLength(1);
    expect(api.batches().length).toBe(before + 1);
    expect(await apply()).toEqual({ applied: 1, resumed: 1 });
    await h.drain();
    expect((await notes()).map((r) => r.label)).toEqual(["a!"]);
  });

  it("puts the rows of an expired batch back as failed with the reason, keeping answered lines", async () => {
    api.mode("expire", { answeredBeforeExpiry: 1 });
    await insert(["a", "b", "c", "d"]);
    await h.drain();
    await submitDueBatches(h.app.database.db, schema(), backend(), openAiClient(backend()));
    expect(await apply()).toEqual({ applied: 1, resumed: 4 });
    await h.drain();
    const rows = await notes();
    // One request (rows a, b, c; or d's) was answered before the batch expired: which one is
    // first in the batch file depends on which chunk was queued first, so both are accepted.
    const answered = rows.filter((r) => r.enrichment_status === "done").map((r) => r.text);
    expect([["a", "b", "c"], ["d"]]).toContainEqual(answered);
    for (const row of rows) {
      if (row.enrichment_status === "done") {
        expect(row.label).toBe(`${row.text}!`);
        continue;
      }
      expect([row.text, row.label, row.enrichment_status]).toEqual([row.text, null, "failed"]);
      expect(row.enrichment_attempts).toBe(1);
      expect(row.enrichment_state.errors?.at(-1)?.message).toMatch(/expired/);
    }
  });

  it("fails only the rows of a line in the error file", async () => {
    await insert(["a", "b", "c", "poison", "e"]);
    await h.drain();
    await submitDueBatches(h.app.database.db, schema(), backend(), openAiClient(backend()));
    await apply();
    await h.drain();
    const rows = await notes();
    expect(rows.map((r) => r.enrichment_status)).toEqual([
      "done",
      "done",
      "done",
      "failed",
      "failed",
    ]);
    expect(rows[3]?.enrichment_state.errors?.at(-1)?.message).toMatch(/model choked/);
  });

  it("fails every row of a batch the API refused", async () => {
    api.mode("fail");
    await insert(["a"]);
    await h.drain();
    await submitDueBatches(h.app.database.db, schema(), backend(), openAiClient(backend()));
    await apply();
    await h.drain();
    const [row] = await notes();
    expect(row?.enrichment_status).toBe("failed");
    expect(row?.enrichment_state.errors?.at(-1)?.message).toMatch(
      /failed: fake validation failure/,
    );
  });

  it("waits for a slow batch, and applying a batch twice is a no-op", async () => {
    api.mode("complete", { pollsToFinish: 2 });
    await insert(["a", "b"]);
    await h.drain();
    await submitDueBatches(h.app.database.db, schema(), backend(), openAiClient(backend()));
    expect(await apply()).toEqual({ applied: 0, resumed: 0 });
    expect(await apply()).toEqual({ applied: 0, resumed: 0 });
    // Two processes at once: one applies, the other finds it applied.
    const both = await Promise.all([apply(), apply()]);
    expect(both.map((r) => r.applied).sort()).toEqual([0, 1]);
    expect(both.reduce((s, r) => s + r.resumed, 0)).toBe(2);
    expect(await apply()).toEqual({ applied: 0, resumed: 0 });
    const jobs = await h.query<{ n: number }>(
      `select count(*)::int as n from ${h.app.runtime.config.workerSchema}._private_jobs where task_id = (select id from ${h.app.runtime.config.workerSchema}._private_tasks where identifier = 'gleaner_enrich')`,
    );
    expect(jobs[0]?.n).toBe(1);
    await h.drain();
    expect((await notes()).map((r) => r.label)).toEqual(["a!", "b!"]);
  });
});
