import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  answerRows,
  keyInSection,
  reply,
  startFakeLlm,
  type FakeLlm,
  rowSection,
} from "./support/fake-llm-server.ts";
import { startHarness, makeDue, type Harness } from "./support/gleaner-harness.ts";

let llm: FakeLlm;
let h: Harness;

beforeAll(async () => {
  llm = await startFakeLlm();
  h = await startHarness(
    "full_loop",
    `
llm:
  backends:
    - name: primary
      base_url: ${llm.url}
      model: fake-1
      timeout: 5s
      price: { input_per_million: 1, output_per_million: 2 }
pipelines:
  companies:
    table: public.companies
    inputs: [name, domain]
    outputs:
      industry:  { type: text,    description: "Primary industry" }
      employees: { type: integer, description: "Approximate headcount" }
      founded:   { type: integer, description: "Year founded" }
    min_confidence: 0.7
    batch_size: 10
    retry: { max_attempts: 3, delays: [1m, 5m] }
    stages:
      - name: profile
        kind: llm
        backends: [primary]
        prompt: "Describe the company {{name}} ({{domain}}) #{{id}}."
        outputs: [industry, employees, founded]
`,
  );
});

afterAll(async () => {
  await h?.close();
  await llm?.close();
});

const goodAnswer = answerRows((id, prompt) => {
  const name = /company (\S+)/.exec(rowSection(prompt, id))?.[1] ?? "?";
  return {
    industry: { value: `industry of ${name}`, confidence: 0.9 },
    employees: { value: 100 + Number(keyInSection(prompt, id)), confidence: 0.8 },
    founded: { value: 2000, confidence: 0.95 },
  };
});

describe("the full loop", () => {
  it("fills NULL outputs, confidence and state after insert → sweep → job → stage", async () => {
    llm.handle(goodAnswer);
    await h.query(
      `insert into companies (name, domain) select 'acme' || i, 'acme' || i || '.com' from generate_series(1, 25) i`,
    );
    const before = await h.query<{ industry: string | null; enrichment_status: string }>(
      "select industry, enrichment_status from companies",
    );
    expect(before.every((r) => r.industry === null && r.enrichment_status === "pending")).toBe(
      true,
    );

    await h.drain();

    const rows = await h.query<{
      id: number;
      name: string;
      industry: string;
      employees: number;
      founded: number;
      enrichment_status: string;
      enrichment_confidence: number;
      enrichment_attempts: number;
      enrichment_next_at: Date | null;
      enriched_at: Date | null;
      enrichment_state: {
        version: string;
        stages: Record<string, { status: string; backend: string; calls: unknown[] }>;
        columns: Record<string, { confidence: number; model: string }>;
        usage: { input_tokens: number; cost_usd: number };
      };
    }>("select * from companies order by id");
    expect(rows).toHaveLength(25);
    for (const row of rows) {
      expect(row.enrichment_status).toBe("done");
      expect(row.industry).toBe(`industry of ${row.name}`);
      expect(row.employees).toBe(100 + row.id);
      expect(row.founded).toBe(2000);
      expect(row.enrichment_confidence).toBeCloseTo(0.8);
      expect(row.enrichment_attempts).toBe(1);
      expect(row.enrichment_next_at).toBeNull();
      expect(row.enriched_at).not.toBeNull();
      expect(row.enrichment_state.version).toBe(h.app.config.pipelines[0]?.version);
      expect(row.enrichment_state.stages.profile?.status).toBe("ok");
      expect(row.enrichment_state.stages.profile?.backend).toBe("primary");
      expect(row.enrichment_state.columns.industry?.confidence).toBeCloseTo(0.9);
      expect(row.enrichment_state.columns.industry?.model).toBe("fake-1");
      expect(row.enrichment_state.usage.input_tokens).toBeGreaterThan(0);
      expect(row.enrichment_state.usage.cost_usd).toBeGreaterThan(0);
    }
    // 25 rows at batch_size 10: three calls, not 25.
    expect(llm.requests.filter((r) => r.path.endsWith("/chat/completions"))).toHaveLength(3);
  });

  it("reprocesses a row when a user sets an output to NULL with SQL", async () => {
    llm.requests.length = 0;
    llm.handle(
      answerRows(() => ({
        industry: { value: "robotics", confidence: 0.99 },
        employees: { value: 7, confidence: 0.99 },
        founded: { value: 1999, confidence: 0.99 },
      })),
    );
    await h.query("update companies set industry = null where id = 3");
    const [reset] = await h.query<{ enrichment_status: string; enrichment_attempts: number }>(
      "select enrichment_status, enrichment_attempts from companies where id = 3",
    );
    expect(reset).toEqual({ enrichment_status: "pending", enrichment_attempts: 0 });
    await h.drain();
    const [row] = await h.query<Record<string, unknown>>(
      "select industry, employees, enrichment_status from companies where id = 3",
    );
    // The cleared column is refilled; the better-confidence answers replace the others too.
    expect(row).toEqual({ industry: "robotics", employees: 7, enrichment_status: "done" });
    expect(llm.requests.filter((r) => r.path.endsWith("/chat/completions"))).toHaveLength(1);
  });

  it("reprocesses from scratch when an input changes", async () => {
    llm.requests.length = 0;
    llm.handle(goodAnswer);
    await h.query("update companies set name = 'globex' where id = 4");
    const [reset] = await h.query<Record<string, unknown>>(
      "select industry, enrichment_status, enrichment_confidence from companies where id = 4",
    );
    expect(reset).toEqual({
      industry: null,
      enrichment_status: "pending",
      enrichment_confidence: null,
    });
    await h.drain();
    const [row] = await h.query<Record<string, unknown>>(
      "select industry, enrichment_status from companies where id = 4",
    );
    expect(row).toEqual({ industry: "industry of globex", enrichment_status: "done" });
  });

  it("keeps NULL and records why when the model finds no value; retries low confidence", async () => {
    llm.handle(
      answerRows(() => ({
        industry: { value: null, confidence: 0 },
        employees: { value: 10, confidence: 0.9 },
        founded: { value: 1990, confidence: 0.9 },
      })),
    );
    await h.query("insert into companies (name, domain) values ('mystery', 'mystery.example')");
    await h.drain();
    const [row] = await h.query<{
      industry: string | null;
      enrichment_status: string;
      enrichment_confidence: number;
      enrichment_next_at: Date | null;
      enrichment_state: { columns: { industry: { reason: string } } };
    }>("select * from companies where name = 'mystery'");
    expect(row?.industry).toBeNull();
    expect(row?.enrichment_status).toBe("done");
    expect(row?.enrichment_confidence).toBe(0);
    expect(row?.enrichment_state.columns.industry.reason).toMatch(/no value/);
    // Below min_confidence: due again later, not now.
    expect(row?.enrichment_next_at).not.toBeNull();
    expect(row!.enrichment_next_at!.getTime()).toBeGreaterThan(Date.now() + 30 * 60_000);

    // When it comes due, the retry fills the gap and keeps the best values so far. Asked the same
    // question, the stage would get the cached answer; a new answer is what this is about.
    await h.query("delete from gleaner.llm_cache");
    llm.handle(
      answerRows(() => ({
        industry: { value: "mining", confidence: 0.8 },
        employees: { value: 99, confidence: 0.5 },
        founded: { value: 1990, confidence: 0.9 },
      })),
    );
    await makeDue(h, "companies");
    await h.drain();
    const [again] = await h.query<Record<string, unknown>>(
      "select industry, employees, enrichment_attempts, enrichment_confidence from companies where name = 'mystery'",
    );
    expect(again?.industry).toBe("mining");
    expect(again?.employees).toBe(10); // 0.5 < 0.9: the earlier answer is kept
    expect(again?.enrichment_attempts).toBe(2);
    expect(again?.enrichment_confidence).toBeCloseTo(0.8);
  });

  it("never overwrites a value a user wrote", async () => {
    llm.handle(goodAnswer);
    await h.query(
      "insert into companies (name, domain, founded) values ('given', 'given.example', 1850)",
    );
    await h.drain();
    const [row] = await h.query<Record<string, unknown>>(
      "select founded, industry from companies where name = 'given'",
    );
    expect(row).toEqual({ founded: 1850, industry: "industry of given" });
  });

  it("answers 500 → failed with a due time, and the error kept", async () => {
    llm.handle(() => reply.status(500, { error: { message: "boom" } }));
    await h.query("insert into companies (name, domain) values ('flaky', 'flaky.example')");
    await h.drain();
    const [row] = await h.query<{
      industry: string | null;
      enrichment_status: string;
      enrichment_next_at: Date;
      enrichment_state: { errors: { class: string; stage: string; message: string }[] };
    }>("select * from companies where name = 'flaky'");
    expect(row?.industry).toBeNull();
    expect(row?.enrichment_status).toBe("failed");
    expect(row?.enrichment_state.errors[0]).toMatchObject({
      class: "server_error",
      stage: "profile",
    });
    const delay = row!.enrichment_next_at.getTime() - Date.now();
    expect(delay).toBeGreaterThan(40_000); // 1m ± 20% jitter
    expect(delay).toBeLessThan(75_000);
  });
});
