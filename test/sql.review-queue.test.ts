import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RowState } from "../src/pipeline/row-state.ts";
import {
  reply,
  rowIdsInPrompt,
  rowSection,
  startFakeLlm,
  type FakeLlm,
} from "./support/fake-llm-server.ts";
import { startHarness, type Harness } from "./support/gleaner-harness.ts";

/**
 * The review loop from plain SQL: <schema>.review_queue lists the values below review_below,
 * <schema>.review approves, edits and rejects them, the reset trigger leaves a reviewed row
 * alone, and a re-run never overwrites a reviewed value nor asks a rejected one again.
 */
let llm: FakeLlm;
let h: Harness;
/** While set, the size stage waits for it (a review made while a job runs). */
let gate: Promise<void> | undefined;

interface Row {
  id: string;
  name: string;
  label: string | null;
  size: number | null;
  enrichment_status: string;
  enrichment_confidence: number | null;
  enrichment_state: RowState;
}

beforeAll(async () => {
  llm = await startFakeLlm();
  llm.handle(async (req) => {
    const size = req.prompt.includes("\nSize: ");
    if (size && gate) await gate;
    return reply.json({
      rows: rowIdsInPrompt(req.prompt).map((id) => {
        const section = rowSection(req.prompt, id);
        if (size) return { id, size: { value: 7, confidence: 1 } };
        // "low" rows get an unsure label, "sure" ones a certain one.
        const confidence = section.includes("low") ? 0.5 : section.includes("sure") ? 1 : 0.9;
        const name = /Label: (.*)/.exec(section)?.[1] ?? "?";
        return { id, label: { value: `label of ${name}`, confidence } };
      }),
    });
  });
  h = await startHarness(
    "review_queue",
    `
llm:
  backends: [{ name: fake, base_url: ${llm.url}, model: fake }]
pipelines:
  items:
    table: items
    inputs: [name]
    outputs:
      label: { type: text, description: "A label" }
      size: { type: integer, description: "A size" }
    min_confidence: 0.7
    review_below: 0.6
    retry: { max_attempts: 3, delays: [1m] }
    stages:
      - { name: label, kind: llm, backends: [fake], prompt: "Label: {{name}}", outputs: [label] }
      - { name: size, kind: llm, backends: [fake], prompt: "Size: {{name}}", outputs: [size] }
`,
  );
});

afterAll(async () => {
  await h?.close();
  await llm?.close();
});

const rows = () => h.query<Row>("select * from items order by id");
const row = async (id: number) =>
  (await h.query<Row>("select * from items where id = $1", [id]))[0]!;
const review = (key: number, column: string, action: string, value?: unknown, by?: string) =>
  h.query<{ review: Record<string, unknown> }>(
    "select gleaner.review('items', $1, $2, $3, $4::jsonb, $5)",
    [String(key), column, action, value === undefined ? null : JSON.stringify(value), by ?? null],
  );
const queue = () =>
  h.query<{ row_key: string; column_name: string; confidence: number; value: unknown }>(
    "select row_key, column_name, confidence, value from gleaner.review_queue order by row_key::int, column_name",
  );

describe("review from SQL", () => {
  it("lists unsure values, and approve, reject and edit lock them through a re-run", async () => {
    await h.query(
      "insert into items (name) values ('alpha low'), ('beta low'), ('gamma low'), ('delta')",
    );
    await h.drain();
    expect(await queue()).toEqual([
      { row_key: "1", column_name: "label", confidence: 0.5, value: "label of alpha low" },
      { row_key: "2", column_name: "label", confidence: 0.5, value: "label of beta low" },
      { row_key: "3", column_name: "label", confidence: 0.5, value: "label of gamma low" },
    ]);
    // The queue's evidence columns come from the provenance.
    const [first] = await h.query<{ pipeline: string; stage: string; row_status: string }>(
      "select pipeline, stage, row_status from gleaner.review_queue_rows('items') limit 1",
    );
    expect(first).toEqual({ pipeline: "items", stage: "label", row_status: "done" });

    const [approved] = await review(1, "label", "approve", undefined, "ann");
    expect(approved!.review).toMatchObject({
      value: "label of alpha low",
      confidence: 1,
      origin: "human",
      stage: "label",
      review: { action: "approved", by: "ann", previous: { confidence: 0.5 } },
    });
    await review(2, "label", "reject");
    await review(3, "size", "edit", 42);

    const [r1, r2, r3] = await rows();
    // No reset: a review is a decision, not a request to ask again.
    for (const r of [r1, r2, r3]) {
      expect(r!.enrichment_status).toBe("done");
      expect(r!.enrichment_state.reset).toBeUndefined();
    }
    expect(r1!.enrichment_confidence).toBe(1);
    expect(r2!.label).toBeNull();
    expect(r2!.enrichment_state.columns?.label).toMatchObject({
      value: null,
      reason: "rejected",
      origin: "human",
      review: { action: "rejected", previous: { value: "label of beta low" } },
    });
    // Rejected counts as settled: the row is as sure as its other outputs.
    expect(r2!.enrichment_confidence).toBe(1);
    expect(r3!.size).toBe(42);
    expect(r3!.enrichment_confidence).toBe(0.5);
    expect(await queue()).toEqual([
      { row_key: "3", column_name: "label", confidence: 0.5, value: "label of gamma low" },
    ]);

    // Every row runs again; the size stage now answers with full confidence, as the edit has.
    const before = llm.requests.length;
    await h.query("update items set enrichment_status = 'pending'");
    await h.drain();
    const after = await rows();
    expect(after.map((r) => r.enrichment_status)).toEqual(["done", "done", "done", "done"]);
    expect(after[0]!.label).toBe("label of alpha low");
    expect(after[0]!.enrichment_state.columns?.label?.origin).toBe("human");
    expect(after[1]!.label).toBeNull();
    expect(after[1]!.enrichment_state.columns?.label?.reason).toBe("rejected");
    expect(after[2]!.size).toBe(42);
    expect(after[2]!.enrichment_state.columns?.size?.review?.action).toBe("edited");
    // Reviewed outputs are not asked again: their stages are skipped for those rows.
    expect(after[0]!.enrichment_state.stages?.["label"]).toMatchObject({ status: "skipped" });
    expect(after[1]!.enrichment_state.stages?.["label"]).toMatchObject({ status: "skipped" });
    expect(after[2]!.enrichment_state.stages?.["size"]).toMatchObject({ status: "skipped" });
    const asked = llm.requests.slice(before).map((r) => r.prompt);
    expect(asked.some((p) => p.includes("Label: alpha low"))).toBe(false);
    expect(asked.some((p) => p.includes("Label: beta low"))).toBe(false);
    expect(asked.some((p) => p.includes("Label: gamma low"))).toBe(true);

    // An input change re-opens the rejected column: it is asked again.
    await h.query("update items set name = 'beta sure' where id = 2");
    expect((await row(2)).enrichment_status).toBe("pending");
    await h.drain();
    const reopened = await row(2);
    expect(reopened.label).toBe("label of beta sure");
    expect(reopened.enrichment_state.columns?.label?.origin).toBeUndefined();
  });

  it("keeps a value reviewed while a job runs the row", async () => {
    let open: () => void = () => {};
    gate = new Promise((r) => (open = r));
    const [{ id }] = (await h.query<{ id: string }>(
      "insert into items (name) values ('epsilon sure') returning id",
    )) as [{ id: string }];
    const draining = h.drain();
    try {
      // The label stage has answered (its record is checkpointed); the size stage waits.
      await expect
        .poll(async () => (await row(Number(id))).enrichment_state?.stages?.["label"]?.status, {
          timeout: 20_000,
        })
        .toBe("ok");
      await review(Number(id), "label", "edit", "a person's label");
    } finally {
      open();
      gate = undefined;
    }
    await draining;
    const done = await row(Number(id));
    expect(done.enrichment_status).toBe("done");
    expect(done.size).toBe(7);
    // The job's answer had confidence 1, as much as the edit: it still does not replace it.
    expect(done.label).toBe("a person's label");
    expect(done.enrichment_state.columns?.label).toMatchObject({
      origin: "human",
      review: { action: "edited" },
    });
  });

  it("refuses what is not a review, naming what is wrong", async () => {
    const failure = (promise: Promise<unknown>) =>
      promise.then(
        () => "no error",
        (e: Error & { code?: string }) => `${e.code}: ${e.message}`,
      );
    expect(await failure(review(1, "label", "delete"))).toMatch(
      /^22023: action must be approve, reject or edit/,
    );
    expect(await failure(review(1, "name", "edit", "x"))).toMatch(
      /^22023: column "name" is not an output of pipeline items \(outputs: label, size\)/,
    );
    expect(await failure(review(999, "label", "approve"))).toMatch(
      /^P0002: .*no row with id = 999/,
    );
    expect(await failure(review(2, "size", "edit"))).toMatch(/^22023: edit needs a value/);
    expect(await failure(review(2, "size", "edit", "many"))).toMatch(/^22P02: .*"many"/);
    await h.query("update items set label = null, enrichment_confidence = 0.5 where id = 4");
    expect(await failure(review(4, "label", "approve"))).toMatch(/nothing to approve/);
    expect(
      await failure(
        h.query("select gleaner.review('nope', '1', 'label', 'approve')").then((r) => r),
      ),
    ).toMatch(/^P0002: no pipeline "nope"/);
  });
});
