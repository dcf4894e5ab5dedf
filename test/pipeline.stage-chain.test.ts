import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  reply,
  rowIdsInPrompt,
  startFakeLlm,
  type FakeLlm,
  type FakeLlmRequest,
  type Handler,
  rowSection,
  rowText,
} from "./support/fake-llm-server.ts";
import { makeDue, startHarness, type Harness } from "./support/gleaner-harness.ts";
import type { RowState } from "../src/pipeline/row-state.ts";

const WORD_COUNT = fileURLToPath(new URL("./fixtures/word-count-stage.ts", import.meta.url));
const WRONG_TYPE = fileURLToPath(new URL("./fixtures/wrong-type-stage.ts", import.meta.url));

/** What follows `marker` on the row's line, e.g. `Analyse: <this>`. */
function after(section: string, marker: string): string | undefined {
  const at = section.indexOf(`${marker} `);
  if (at === -1) return undefined;
  return section.slice(at + marker.length + 1).split("\n")[0];
}

/** Chat completion requests whose prompt carries a stage's marker. */
function callsFor(server: FakeLlm, marker: string): FakeLlmRequest[] {
  return server.requests.filter(
    (r) => r.path.endsWith("/chat/completions") && r.prompt.includes(`\n${marker} `),
  );
}

/**
 * Answers every row of a request by the stage marker in its section: Analyse/First/BatchN
 * give a summary, Classify/Second a category, Decide an action.
 */
const stagesAnswer: Handler = (req) =>
  reply.json({
    rows: rowIdsInPrompt(req.prompt).map((id) => {
      const section = rowSection(req.prompt, id);
      const title =
        after(section, "Analyse:") ??
        after(section, "First:") ??
        after(section, "Batch10:") ??
        after(section, "Batch5:");
      if (title !== undefined) {
        return { id, summary: { value: `summary of ${title}`, confidence: 0.9 } };
      }
      const summary = after(section, "Classify:") ?? after(section, "Second:");
      if (summary !== undefined) {
        const category = summary.includes("broken") ? "complaint" : "praise";
        return { id, category: { value: category, confidence: 0.8 } };
      }
      if (after(section, "Decide:") !== undefined) {
        return { id, action: { value: "refund", confidence: 0.95 } };
      }
      throw new Error(`no stage marker in ${JSON.stringify(section)}`);
    }),
  });

interface Row {
  id: number | string;
  title: string;
  summary: string | null;
  category: string | null;
  action: string | null;
  words: number | null;
  label: string | null;
  enrichment_status: string;
  enrichment_confidence: number | null;
  enrichment_attempts: number;
  enrichment_next_at: Date | null;
  enrichment_state: RowState;
}

const TEXT_OUTPUTS = `
      summary:  { type: text, description: "One-line summary" }
      category: { type: text, description: "complaint or praise" }`;

let llm: FakeLlm;
let h: Harness;

beforeAll(async () => {
  llm = await startFakeLlm();
  h = await startHarness(
    "stage_chain",
    `
llm:
  backends:
    - name: main
      base_url: ${llm.url}
      model: fake-main
      timeout: 5s
      price: { input_per_million: 1, output_per_million: 2 }
    - name: second
      base_url: ${llm.url}
      model: fake-second
      timeout: 5s
pipelines:
  tickets:
    table: public.tickets
    inputs: [title]
    outputs:${TEXT_OUTPUTS}
      action:   { type: text, description: "What to do about it" }
    min_confidence: 0.7
    retry: { max_attempts: 3, delays: [1m, 5m] }
    stages:
      - name: analyse
        kind: llm
        backends: [main]
        prompt: "Analyse: {{title}}"
        outputs: [summary]
      - name: classify
        kind: llm
        backends: [main]
        prompt: "Classify: {{summary}}"
        outputs: [category]
      - name: decide
        kind: llm
        backends: [main]
        prompt: "Decide: {{title}} ({{category}})"
        outputs: [action]
        when: { output: category, in: [complaint] }
  resumed:
    table: public.resumed
    inputs: [title]
    outputs:${TEXT_OUTPUTS}
    retry: { max_attempts: 3, delays: [1m, 5m] }
    stages:
      - name: first
        kind: llm
        backends: [main]
        prompt: "First: {{title}}"
        outputs: [summary]
      - name: second
        kind: llm
        backends: [second]
        prompt: "Second: {{summary}}"
        outputs: [category]
  counted:
    table: public.counted
    inputs: [title]
    outputs:
      words: { type: integer, description: "Number of words in the title" }
    retry: { max_attempts: 3, delays: [1m, 5m] }
    stages:
      - name: count
        kind: custom
        module: ${WORD_COUNT}
        outputs: [words]
  miscounted:
    table: public.miscounted
    inputs: [title]
    outputs:
      words: { type: integer, description: "Number of words in the title" }
      label: { type: text, description: "A label" }
    stages:
      - name: count
        kind: custom
        module: ${WRONG_TYPE}
        outputs: [words, label]
  batched:
    table: public.batched
    inputs: [title]
    outputs:
      summary: { type: text, description: "One-line summary" }
    batch_size: 10
    stages:
      - name: analyse
        kind: llm
        backends: [main]
        prompt: "Batch10: {{title}}"
        outputs: [summary]
  small_batches:
    table: public.small_batches
    inputs: [title]
    outputs:
      summary: { type: text, description: "One-line summary" }
    batch_size: 10
    stages:
      - name: analyse
        kind: llm
        backends: [main]
        prompt: "Batch5: {{title}}"
        outputs: [summary]
        batch_size: 5
`,
  );
});

afterAll(async () => {
  await h?.close();
  await llm?.close();
});

async function rowsOf(table: string): Promise<Row[]> {
  return h.query<Row>(`select * from ${table} order by id`);
}

describe("a chain of stages", () => {
  it("runs analyse → classify → decide, skipping decide where its `when` does not hold", async () => {
    llm.resetStats();
    llm.handle(stagesAnswer);
    await h.query(
      "insert into tickets (title) values ('broken toaster'), ('great service'), ('broken phone'), ('nice staff')",
    );
    await h.drain();

    const rows = await rowsOf("tickets");
    expect(rows).toHaveLength(4);
    const complaints = rows.filter((r) => r.title.startsWith("broken"));
    const others = rows.filter((r) => !r.title.startsWith("broken"));
    expect(complaints).toHaveLength(2);

    for (const row of rows) {
      expect(row.enrichment_status).toBe("done");
      expect(row.summary).toBe(`summary of ${row.title}`);
      expect(row.enrichment_state.stages?.analyse?.status).toBe("ok");
      expect(row.enrichment_state.stages?.classify?.status).toBe("ok");
      // min(0.9, 0.8[, 0.95]): a skipped stage's output does not pull the confidence down.
      expect(row.enrichment_confidence).toBeCloseTo(0.8);
      expect(row.enrichment_next_at).toBeNull();
    }
    for (const row of complaints) {
      expect(row.category).toBe("complaint");
      expect(row.action).toBe("refund");
      expect(row.enrichment_state.stages?.decide?.status).toBe("ok");
      expect(row.enrichment_state.columns?.action?.confidence).toBeCloseTo(0.95);
    }
    for (const row of others) {
      expect(row.category).toBe("praise");
      expect(row.action).toBeNull();
      expect(row.enrichment_state.stages?.decide?.status).toBe("skipped");
      expect(row.enrichment_state.columns?.action).toBeUndefined();
    }

    // One call per stage, and the decide prompt lists the complaints only.
    expect(callsFor(llm, "Analyse:")).toHaveLength(1);
    expect(callsFor(llm, "Classify:")).toHaveLength(1);
    const decide = callsFor(llm, "Decide:");
    expect(decide).toHaveLength(1);
    const decidePrompt = decide[0]?.prompt ?? "";
    expect(
      rowIdsInPrompt(decidePrompt)
        .map((id) => rowText(decidePrompt, id))
        .sort(),
    ).toEqual(complaints.map((r) => `Decide: ${r.title} (complaint)`).sort());
    for (const row of others) expect(decidePrompt).not.toContain(row.title);

    // The row's usage is the sum of its stages' usage: checkpoints between stages and the
    // final write store the same run, never count it twice.
    for (const row of rows) {
      const state = row.enrichment_state as {
        usage: { input_tokens: number; cost_usd: number };
        stages: Record<string, { usage?: { input_tokens: number; cost_usd: number } }>;
      };
      const stages = Object.values(state.stages);
      const sum = stages.reduce((n, s) => n + (s.usage?.input_tokens ?? 0), 0);
      expect(sum).toBeGreaterThan(0);
      expect(state.usage.input_tokens).toBeCloseTo(sum, 6);
      expect(state.usage.cost_usd).toBeCloseTo(
        stages.reduce((n, s) => n + (s.usage?.cost_usd ?? 0), 0),
        6,
      );
    }
  });

  it("shows a later stage the outputs of the earlier ones", async () => {
    llm.resetStats();
    llm.handle(stagesAnswer);
    const [inserted] = await h.query<{ id: number | string }>(
      "insert into tickets (title) values ('broken radio') returning id",
    );
    const id = String(inserted?.id);
    await h.drain();
    const classify = callsFor(llm, "Classify:");
    expect(classify).toHaveLength(1);
    const prompt = classify[0]?.prompt ?? "";
    // The row's id in a prompt is drawn for that call; its section holds its own text only.
    const [rowId] = rowIdsInPrompt(prompt);
    expect(rowIdsInPrompt(prompt)).toHaveLength(1);
    expect(rowSection(prompt, rowId ?? "")).toBe(
      `### row ${rowId}\nClassify: summary of broken radio`,
    );
    // And decide saw classify's answer.
    const decide = callsFor(llm, "Decide:")[0]?.prompt ?? "";
    const [decideId] = rowIdsInPrompt(decide);
    expect(rowSection(decide, decideId ?? "")).toBe(
      `### row ${decideId}\nDecide: broken radio (complaint)`,
    );
    const [row] = await h.query<Row>("select * from tickets where id = $1", [id]);
    expect(row?.action).toBe("refund");
  });

  it("resumes a failed row at the stage that failed", async () => {
    llm.resetStats();
    let secondCalls = 0;
    llm.handle((req) => {
      if (req.model === "fake-second" && secondCalls++ === 0) {
        return reply.status(500, { error: { message: "second stage down" } });
      }
      return stagesAnswer(req);
    });
    await h.query("insert into resumed (title) values ('broken kettle')");
    await h.drain();

    let [row] = await rowsOf("resumed");
    expect(row?.enrichment_status).toBe("failed");
    expect(row?.enrichment_attempts).toBe(1);
    expect(row?.enrichment_state.stages?.first?.status).toBe("ok");
    expect(row?.enrichment_state.stages?.second?.status).toBe("error");
    expect(row?.enrichment_state.errors?.[0]).toMatchObject({
      stage: "second",
      class: "server_error",
    });
    expect(row?.category).toBeNull();
    expect(callsFor(llm, "First:")).toHaveLength(1);
    expect(callsFor(llm, "Second:")).toHaveLength(1);

    await makeDue(h, "resumed");
    await h.drain();
    [row] = await rowsOf("resumed");
    // Only the failed stage was asked again, and it saw the first stage's earlier answer.
    expect(callsFor(llm, "First:")).toHaveLength(1);
    const second = callsFor(llm, "Second:");
    expect(second).toHaveLength(2);
    expect(second[1]?.prompt).toContain("Second: summary of broken kettle");
    expect(row?.enrichment_status).toBe("done");
    expect(row?.enrichment_attempts).toBe(2);
    expect(row?.summary).toBe("summary of broken kettle");
    expect(row?.category).toBe("complaint");
    expect(row?.enrichment_confidence).toBeCloseTo(0.8);
    expect(row?.enrichment_state.stages?.second?.status).toBe("ok");
    expect(row?.enrichment_state.stages?.second?.attempt).toBe(2);
    expect(row?.enrichment_state.stages?.first?.attempt).toBe(1);
  });

  it("runs a custom stage module, keeping a permanent error as exhausted", async () => {
    llm.resetStats();
    await h.query(
      "insert into counted (title) values ('hello brave new world'), ('explode'), ('one')",
    );
    await h.drain();
    const rows = await rowsOf("counted");
    const byTitle = new Map(rows.map((r) => [r.title, r]));

    const four = byTitle.get("hello brave new world");
    expect(four?.words).toBe(4);
    expect(four?.enrichment_status).toBe("done");
    expect(four?.enrichment_confidence).toBe(1);
    expect(four?.enrichment_state.columns?.words).toMatchObject({ value: 4, confidence: 1 });
    expect(byTitle.get("one")?.words).toBe(1);
    expect(byTitle.get("one")?.enrichment_status).toBe("done");

    const exploded = byTitle.get("explode");
    expect(exploded?.words).toBeNull();
    expect(exploded?.enrichment_status).toBe("exhausted");
    expect(exploded?.enrichment_attempts).toBe(1);
    expect(exploded?.enrichment_next_at).toBeNull();
    expect(exploded?.enrichment_confidence).toBeNull();
    expect(exploded?.enrichment_state.errors).toHaveLength(1);
    expect(exploded?.enrichment_state.errors?.[0]).toMatchObject({
      stage: "count",
      class: "stage_permanent",
      message: "cannot count",
      permanent: true,
    });
    expect(exploded?.enrichment_state.stages?.count?.error).toMatchObject({
      message: "cannot count",
      permanent: true,
    });
    // A custom stage makes no LLM call.
    expect(llm.requests.filter((r) => r.path.endsWith("/chat/completions"))).toHaveLength(0);
  });

  it("keeps NULL with a reason when a custom stage returns the wrong type", async () => {
    await h.query("insert into miscounted (title) values ('three little words')");
    await h.drain();
    const [row] = await rowsOf("miscounted");
    expect(row?.words).toBeNull();
    expect(row?.label).toBe("label three little words");
    expect(row?.enrichment_state.columns?.words).toMatchObject({
      value: null,
      stage: "count",
      reason: 'expected an integer, got string "three"',
    });
    expect(row?.enrichment_state.columns?.label).toMatchObject({
      value: "label three little words",
    });
    expect(row?.enrichment_status).toBe("done");
    expect(row?.enrichment_confidence).toBe(0);
  });

  it("sends batch_size rows per call, a stage's own batch_size winning", async () => {
    llm.resetStats();
    llm.handle(stagesAnswer);
    await h.query(
      "insert into batched (title) select 'ticket ' || i from generate_series(1, 25) i",
    );
    await h.drain();
    const tens = callsFor(llm, "Batch10:");
    expect(tens).toHaveLength(3);
    expect(tens.map((r) => rowIdsInPrompt(r.prompt).length).sort((a, b) => a - b)).toEqual([
      5, 10, 10,
    ]);
    const batched = await rowsOf("batched");
    expect(batched).toHaveLength(25);
    expect(batched.every((r) => r.enrichment_status === "done")).toBe(true);
    expect(batched.every((r) => r.summary === `summary of ${r.title}`)).toBe(true);

    llm.resetStats();
    await h.query(
      "insert into small_batches (title) select 'ticket ' || i from generate_series(1, 25) i",
    );
    await h.drain();
    const fives = callsFor(llm, "Batch5:");
    expect(fives).toHaveLength(5);
    expect(fives.every((r) => rowIdsInPrompt(r.prompt).length === 5)).toBe(true);
    const small = await rowsOf("small_batches");
    expect(small.every((r) => r.enrichment_status === "done")).toBe(true);
    expect(small.every((r) => r.summary === `summary of ${r.title}`)).toBe(true);
  });
});
