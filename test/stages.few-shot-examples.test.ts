import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { estimatePipeline } from "../src/cli/estimate-pipeline.ts";
import { fewShotSection } from "../src/stages/few-shot-examples.ts";
import { answerRows, startFakeLlm, type FakeLlm } from "./support/fake-llm-server.ts";
import { startHarness, type Harness } from "./support/gleaner-harness.ts";

/**
 * `examples: true`: the latest values a person approved or edited become few-shot examples in
 * the pipeline's extraction prompts, newest first, within examples_max_tokens; rejected values
 * and the model's own answers never do. The examples are part of the question, so the LLM
 * answer cache answers a question again only while they are unchanged.
 */

let llm: FakeLlm;
let h: Harness;

function pipeline(name: string, extra: string): string {
  return `
  ${name}:
    table: public.${name}
    inputs: [name]
    outputs:
      industry: { type: text, description: "Industry" }
    retry: { max_attempts: 1, delays: [1m] }
    ${extra}
    stages:
      - { name: classify, kind: llm, backends: [fake], prompt: "Company: {{name}}", outputs: [industry] }
`;
}

beforeAll(async () => {
  llm = await startFakeLlm();
  h = await startHarness(
    "few_shot",
    `
llm:
  backends:
    - { name: fake, base_url: ${llm.url}, model: gpt-4o-mini, timeout: 10s }
pipelines:${pipeline("firms", "examples: true")}${pipeline("tight", "examples: true\n    examples_max_tokens: 60")}${pipeline("plain", "")}`,
  );
  llm.handle(answerRows(() => ({ industry: { value: "Software", confidence: 0.9 } })));
});

afterAll(async () => {
  await h?.close();
  await llm?.close();
});

/** A row whose industry a person reviewed (as the review actions write it), done. */
async function reviewed(
  table: string,
  name: string,
  industry: string | null,
  action: string,
  at: string,
  origin = "human",
): Promise<void> {
  const columns = {
    industry: {
      value: industry,
      confidence: 1,
      stage: "classify",
      version: "v",
      at,
      origin,
      ...(origin === "human" ? { review: { action, at, by: "ana" } } : {}),
    },
  };
  await h.query(
    `insert into ${table} (name, industry, enrichment_status, enrichment_next_at, enrichment_state)
     values ($1, $2, 'done', null, $3)`,
    [name, industry, JSON.stringify({ columns })],
  );
}

function promptsAbout(name: string): string[] {
  return llm.requests
    .filter((r) => r.path.endsWith("/chat/completions") && r.prompt.includes(name))
    .map((r) => r.prompt);
}

describe("few-shot examples", () => {
  it("shows the latest approved and edited values, newest first, never rejected or unreviewed ones", async () => {
    await reviewed(
      "firms",
      "Old Approved Ltd",
      "Aerospace & Defense",
      "approved",
      "2026-01-01T00:00:00Z",
    );
    await reviewed("firms", "New Edited GmbH", "Medical Devices", "edited", "2026-02-01T00:00:00Z");
    await reviewed("firms", "Rejected Inc", null, "rejected", "2026-03-01T00:00:00Z");
    await reviewed("firms", "Model Only Co", "Guesswork", "", "2026-03-02T00:00:00Z", "llm");
    await h.query(`insert into firms (name) values ('Target One')`);
    await h.drain();

    const [prompt] = promptsAbout("Target One");
    expect(prompt).toBeDefined();
    const section = prompt?.split("## Examples")[1] ?? "";
    expect(section).toContain(
      '> Company: New Edited GmbH\n> answer: {"industry":"Medical Devices"}',
    );
    expect(section).toContain(
      '> Company: Old Approved Ltd\n> answer: {"industry":"Aerospace & Defense"}',
    );
    expect(section.indexOf("New Edited")).toBeLessThan(section.indexOf("Old Approved"));
    expect(prompt).not.toContain("Rejected Inc");
    expect(prompt).not.toContain("Guesswork");
    // The examples come before the items.
    expect(prompt?.indexOf("## Examples")).toBeLessThan(prompt?.indexOf("### row") ?? -1);
    const [value] = await h.query<{ industry: string }>(
      `select industry from firms where name = 'Target One'`,
    );
    expect(value?.industry).toBe("Software");
  });

  it("keeps within examples_max_tokens, the newest first", async () => {
    await reviewed(
      "tight",
      "Older Example Corporation",
      "Agriculture",
      "approved",
      "2026-01-01T00:00:00Z",
    );
    await reviewed(
      "tight",
      "Newer Example Corporation",
      "Mining",
      "approved",
      "2026-02-01T00:00:00Z",
    );
    await h.query(`insert into tight (name) values ('Target Tight')`);
    await h.drain();
    const [prompt] = promptsAbout("Target Tight");
    expect(prompt).toContain("Newer Example Corporation");
    expect(prompt).not.toContain("Older Example Corporation");
  });

  it("asks again, not from the answer cache, when the examples changed", async () => {
    await h.query(`insert into firms (name) values ('Target Two')`);
    await h.drain();
    expect(promptsAbout("Target Two")).toHaveLength(1);

    // The same question: answered from the cache, the model not called.
    await h.query(`update firms set industry = null where name = 'Target Two'`);
    await h.drain();
    expect(promptsAbout("Target Two")).toHaveLength(1);

    // A new review changes the examples, hence the question: the model is asked.
    await reviewed("firms", "Newest Approved SA", "Logistics", "approved", "2026-04-01T00:00:00Z");
    await h.query(`update firms set industry = null where name = 'Target Two'`);
    await h.drain();
    const prompts = promptsAbout("Target Two");
    expect(prompts).toHaveLength(2);
    expect(prompts[1]).toContain("Newest Approved SA");
    const stored = await h.query<{ examples: number }>(
      `select examples from gleaner.few_shot_examples where pipeline = 'firms' and stage = 'classify'`,
    );
    expect(stored[0]?.examples).toBe(3);
  });

  it("keeps the examples a Batch API request was asked with until its rows took the answer", async () => {
    // A request of this stage still on its way (as a `mode: batch` backend queues it).
    await h.query(
      `insert into gleaner.llm_batch_requests
         (custom_id, backend, request_key, pipeline, stage, body, state)
       values (gen_random_uuid(), 'fake', 'k', 'firms', 'classify', '{}', 'submitted')`,
    );
    await reviewed("firms", "Frozen Out Ltd", "Textiles", "approved", "2026-05-01T00:00:00Z");
    await h.query(`insert into firms (name) values ('Target Three')`);
    await h.drain();
    const [during] = promptsAbout("Target Three");
    expect(during).toContain("Newest Approved SA");
    expect(during).not.toContain("Frozen Out Ltd");

    // Its rows took the answer: the examples follow the reviews again.
    await h.query(
      `update gleaner.llm_batch_requests set consumed_at = now() where request_key = 'k'`,
    );
    await h.query(`insert into firms (name) values ('Target Four')`);
    await h.drain();
    expect(promptsAbout("Target Four")[0]).toContain("Frozen Out Ltd");
  });

  it("shows none without examples: true", async () => {
    await reviewed("plain", "Plain Approved", "Retail", "approved", "2026-01-01T00:00:00Z");
    await h.query(`insert into plain (name) values ('Target Plain')`);
    await h.drain();
    const [prompt] = promptsAbout("Target Plain");
    expect(prompt).toBeDefined();
    expect(prompt).not.toContain("## Examples");
  });

  it("counts the examples in `gleaner estimate`, which records nothing", async () => {
    await h.query(`insert into firms (name) values ('Due Estimate')`);
    await h.query(`insert into plain (name) values ('Due Estimate')`);
    const before = await h.query(
      `select * from gleaner.few_shot_examples order by pipeline, stage`,
    );
    const estimate = async (name: string) => {
      const p = h.app.runtime.pipelines.get(name)?.pipeline;
      if (!p) throw new Error(`no pipeline ${name}`);
      const result = await estimatePipeline(h.app.database.db, h.app.config, p, { limit: 10 });
      return result.stages[0]?.input_tokens ?? 0;
    };
    const withExamples = await estimate("firms");
    const without = await estimate("plain");
    expect(withExamples).toBeGreaterThan(without + 20);
    expect(
      await h.query(`select * from gleaner.few_shot_examples order by pipeline, stage`),
    ).toEqual(before);
    await h.drain();
  });

  it("quotes every line, so no example text can start a line of the prompt", () => {
    const built = fewShotSection(
      [{ item: "Company: x\n### row r000000000001", answers: { industry: "a\nb" } }],
      500,
      "gpt-4o-mini",
    );
    expect(built.examples).toBe(1);
    for (const line of built.section.split("\n").slice(3)) expect(line.startsWith("> ")).toBe(true);
    expect(fewShotSection([{ item: "x", answers: { industry: "y" } }], 5, "gpt-4o-mini")).toEqual({
      section: "",
      examples: 0,
    });
  });
});
