import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { evaluateWhen } from "../src/pipeline/evaluate-when.ts";
import { stageInputHash } from "../src/pipeline/stage-reuse.ts";
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
 * A stage's `when` may test how sure an earlier answer was: the resolution stage runs only where
 * the classification is confident, and the others are skipped with the reason kept.
 */

let llm: FakeLlm;
let h: Harness;

beforeAll(async () => {
  llm = await startFakeLlm();
  h = await startHarness(
    "evaluate_when",
    `
llm:
  backends:
    - { name: fake, base_url: ${llm.url}, model: fake, timeout: 10s }
pipelines:
  firms:
    table: public.firms
    inputs: [name]
    outputs:
      industry: { type: text, description: "Industry" }
      segment: { type: text, description: "Market segment within the industry" }
    min_confidence: 0
    retry: { max_attempts: 1, delays: [1m] }
    stages:
      - { name: classify, kind: llm, backends: [fake], prompt: "Classify {{name}}", outputs: [industry] }
      - name: resolve
        kind: llm
        backends: [fake]
        prompt: "Segment of {{name}} in {{industry}}"
        outputs: [segment]
        when: { output: industry, confidence: { gte: 0.8 } }
`,
  );
});

afterAll(async () => {
  await h?.close();
  await llm?.close();
});

describe("when on confidence", () => {
  it("runs a stage only where the earlier answer is confident enough", async () => {
    llm.handle((req) =>
      reply.json({
        rows: rowIdsInPrompt(req.prompt).map((id) => {
          const section = rowSection(req.prompt, id);
          if (section.includes("Segment of"))
            return { id, segment: { value: "launch services", confidence: 0.9 } };
          const sure = section.includes("Sure Co");
          return { id, industry: { value: "aerospace", confidence: sure ? 0.85 : 0.5 } };
        }),
      }),
    );
    await h.query(`insert into firms (name) values ('Sure Co'), ('Unsure Co')`);
    await h.drain();
    const rows = await h.query<{
      name: string;
      segment: string | null;
      enrichment_state: RowState;
    }>(`select name, segment, enrichment_state from firms order by name`);
    const [sure, unsure] = rows;
    expect(sure?.segment).toBe("launch services");
    expect(sure?.enrichment_state.stages?.["resolve"]?.status).toBe("ok");
    expect(unsure?.segment).toBeNull();
    expect(unsure?.enrichment_state.stages?.["resolve"]).toMatchObject({
      status: "skipped",
      reason: "its `when` condition does not hold",
    });
    // One resolve call, for the sure row only.
    const resolveCalls = llm.requests.filter((r) => r.prompt.includes("Segment of"));
    expect(resolveCalls).toHaveLength(1);
    expect(resolveCalls[0]?.prompt).toContain("Sure Co");
    expect(resolveCalls[0]?.prompt).not.toContain("Unsure Co");
  });
});

describe("stage reuse", () => {
  it("re-decides a stage whose `when` tests a confidence that changed, and only that stage", () => {
    const p = [...h.app.runtime.pipelines.values()][0]?.pipeline;
    if (!p) throw new Error("no pipeline");
    const [classify, resolve] = p.stages;
    if (!classify || !resolve) throw new Error("two stages expected");
    const row = (industry: number) => ({
      key: "1",
      fields: { name: "A", industry: "x" },
      data: {},
      confidence: { industry },
    });
    expect(stageInputHash(p, resolve, row(0.9))).not.toBe(stageInputHash(p, resolve, row(0.5)));
    expect(stageInputHash(p, classify, row(0.9))).toBe(stageInputHash(p, classify, row(0.5)));
  });
});

describe("evaluateWhen", () => {
  const fields = { industry: "software", tags: null };
  it("tests confidence bounds, counting an output without one as 0", () => {
    const when = { output: "industry", confidence: { gte: 0.8, lt: 0.95 } };
    expect(evaluateWhen(when, fields, { industry: 0.8 })).toBe(true);
    expect(evaluateWhen(when, fields, { industry: 0.95 })).toBe(false);
    expect(evaluateWhen(when, fields, { industry: 0.79 })).toBe(false);
    expect(evaluateWhen(when, fields)).toBe(false);
    expect(evaluateWhen({ output: "tags", confidence: { lte: 0 } }, fields, {})).toBe(true);
  });
  it("combines a confidence test with a value test and with all / any / not", () => {
    const both = { output: "industry", equals: "software", confidence: { gt: 0.5 } };
    expect(evaluateWhen(both, fields, { industry: 0.9 })).toBe(true);
    expect(evaluateWhen(both, { industry: "biotech" }, { industry: 0.9 })).toBe(false);
    const unsure = { not: { output: "industry", confidence: { gte: 0.8 } } };
    expect(evaluateWhen(unsure, fields, { industry: 0.6 })).toBe(true);
    expect(
      evaluateWhen({ any: [both, { output: "tags", is_null: true }] }, fields, { industry: 0.1 }),
    ).toBe(true);
  });
});
