import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  answerRows,
  reply,
  rowIdsInPrompt,
  startFakeLlm,
  type FakeLlm,
  rowSection,
} from "./support/fake-llm-server.ts";
import { makeDue, startHarness, type Harness } from "./support/gleaner-harness.ts";
import { reprocessRows } from "../src/sql/reprocess-rows.ts";
import type { RowState } from "../src/pipeline/row-state.ts";

interface Row {
  id: number | string;
  name: string;
  industry: string | null;
  employees: number | null;
  founded: number | null;
  enrichment_status: string;
  enrichment_confidence: number | null;
  enrichment_attempts: number;
  enrichment_next_at: Date | null;
  enrichment_state: RowState;
}

let llm: FakeLlm;
let llm2: FakeLlm;
let h: Harness;

const PIPELINE = (table: string, backends: string) => `
  ${table}:
    table: public.${table}
    inputs: [name]
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
        backends: ${backends}
        prompt: "Describe the company {{name}}."
        outputs: [industry, employees, founded]
`;

beforeAll(async () => {
  llm = await startFakeLlm();
  llm2 = await startFakeLlm();
  h = await startHarness(
    "retries",
    `
llm:
  backends:
    - name: main
      base_url: ${llm.url}
      model: fake-main
      timeout: 5s
      price: { input_per_million: 1, output_per_million: 2 }
    - name: dead
      base_url: ${llm.url}
      model: fake-dead
      timeout: 5s
      price: { input_per_million: 1, output_per_million: 2 }
    - name: spare
      base_url: ${llm2.url}
      model: fake-spare
      timeout: 5s
      price: { input_per_million: 1, output_per_million: 2 }
    - name: slow
      base_url: ${llm.url}
      model: fake-slow
      timeout: 300ms
    # A backend of its own for the 429 test: its Retry-After pauses the backend for later calls.
    - name: throttled
      base_url: ${llm.url}
      model: fake-main
      timeout: 5s
pipelines:
${PIPELINE("retrying", "[main]")}
${PIPELINE("rate_limited", "[throttled]")}
${PIPELINE("unauthorized", "[main]")}
${PIPELINE("partial", "[main]")}
${PIPELINE("fallback", "[dead, spare]")}
${PIPELINE("broken", "[main]")}
${PIPELINE("slow", "[slow]")}
`,
  );
});

afterAll(async () => {
  await h?.close();
  await llm?.close();
  await llm2?.close();
});

const chatCalls = (server: FakeLlm) =>
  server.requests.filter((r) => r.path.endsWith("/chat/completions"));

const goodAnswer = answerRows((id, prompt) => {
  const name = /company (\S+?)\./.exec(rowSection(prompt, id))?.[1] ?? "?";
  return {
    industry: { value: `industry of ${name}`, confidence: 0.9 },
    employees: { value: 42, confidence: 0.9 },
    founded: { value: 2001, confidence: 0.9 },
  };
});

async function rowsOf(table: string): Promise<Row[]> {
  return h.query<Row>(`select * from ${table} order by id`);
}

async function onlyRow(table: string): Promise<Row> {
  const rows = await rowsOf(table);
  expect(rows).toHaveLength(1);
  return rows[0] as Row;
}

/** Milliseconds from now until the row is due again. */
function dueIn(row: Row): number {
  expect(row.enrichment_next_at).not.toBeNull();
  return (row.enrichment_next_at as Date).getTime() - Date.now();
}

describe("retries", () => {
  it("backs off 1m, then 5m, then gives up as exhausted; reprocess starts it afresh", async () => {
    llm.handle(() => reply.status(500, { error: { message: "boom" } }));
    await h.query("insert into retrying (name) values ('flaky')");

    await h.drain();
    let row = await onlyRow("retrying");
    expect(row.enrichment_status).toBe("failed");
    expect(row.enrichment_attempts).toBe(1);
    // 1m ± 20% jitter, less the little time since the write.
    expect(dueIn(row)).toBeGreaterThan(45_000);
    expect(dueIn(row)).toBeLessThanOrEqual(72_000);

    await makeDue(h, "retrying");
    await h.drain();
    row = await onlyRow("retrying");
    expect(row.enrichment_status).toBe("failed");
    expect(row.enrichment_attempts).toBe(2);
    // 5m ± 20% jitter.
    expect(dueIn(row)).toBeGreaterThan(235_000);
    expect(dueIn(row)).toBeLessThanOrEqual(360_000);

    await makeDue(h, "retrying");
    await h.drain();
    row = await onlyRow("retrying");
    expect(row.enrichment_status).toBe("exhausted");
    expect(row.enrichment_attempts).toBe(3);
    expect(row.enrichment_next_at).toBeNull();
    expect(row.industry).toBeNull();
    expect(row.enrichment_confidence).toBeNull();
    const errors = row.enrichment_state.errors ?? [];
    expect(errors).toHaveLength(3);
    expect(errors.map((e) => e.class)).toEqual(["server_error", "server_error", "server_error"]);
    expect(errors.map((e) => e.attempt)).toEqual([1, 2, 3]);
    expect(errors.every((e) => e.stage === "profile" && e.permanent === false)).toBe(true);
    expect(chatCalls(llm)).toHaveLength(3);

    // An exhausted row stays put: nothing is due, a drain makes no call.
    await h.drain();
    expect(chatCalls(llm)).toHaveLength(3);

    // `gleaner reprocess --status exhausted`: pending again, with a fresh attempt count.
    const entry = h.app.runtime.pipelines.get("retrying");
    expect(entry).toBeDefined();
    const reset = await reprocessRows(h.app.database.db, entry!.pipeline, {
      status: "exhausted",
    });
    expect(reset).toBe(1);
    row = await onlyRow("retrying");
    expect(row.enrichment_status).toBe("pending");
    expect(row.enrichment_attempts).toBe(0);
    expect(row.enrichment_state.reset?.reason).toBe("reprocess command");

    llm.handle(goodAnswer);
    await h.drain();
    row = await onlyRow("retrying");
    expect(row.enrichment_status).toBe("done");
    expect(row.enrichment_attempts).toBe(1);
    expect(row.industry).toBe("industry of flaky");
    expect(row.enrichment_confidence).toBeCloseTo(0.9);
    expect(row.enrichment_next_at).toBeNull();
    expect(row.enrichment_state.stages?.profile?.status).toBe("ok");
  });

  it("waits at least as long as a 429's Retry-After asks", async () => {
    llm.handle(() =>
      reply.status(429, { error: { message: "slow down" } }, { "retry-after": "600" }),
    );
    await h.query("insert into rate_limited (name) values ('busy')");
    await h.drain();
    const row = await onlyRow("rate_limited");
    expect(row.enrichment_status).toBe("failed");
    expect(row.enrichment_attempts).toBe(1);
    expect(row.enrichment_state.errors?.[0]).toMatchObject({
      class: "rate_limited",
      permanent: false,
    });
    // Retry-After (600 s) wins over the policy's 1m.
    expect(dueIn(row)).toBeGreaterThan(590_000);
    expect(dueIn(row)).toBeLessThanOrEqual(600_000);
  });

  it("treats 401 as permanent: exhausted after the first attempt", async () => {
    llm.requests.length = 0;
    llm.handle(() => reply.status(401, { error: { message: "bad key" } }));
    await h.query("insert into unauthorized (name) values ('locked')");
    await h.drain();
    const row = await onlyRow("unauthorized");
    expect(row.enrichment_status).toBe("exhausted");
    expect(row.enrichment_attempts).toBe(1);
    expect(row.enrichment_next_at).toBeNull();
    expect(row.industry).toBeNull();
    expect(row.enrichment_state.errors).toHaveLength(1);
    expect(row.enrichment_state.errors?.[0]).toMatchObject({
      class: "auth",
      stage: "profile",
      attempt: 1,
      permanent: true,
    });
    expect(row.enrichment_state.stages?.profile?.error).toMatchObject({
      class: "auth",
      permanent: true,
    });
    expect(chatCalls(llm)).toHaveLength(1);
  });

  it("keeps the good rows of a batch whose answer omits one row and mistypes another", async () => {
    llm.requests.length = 0;
    llm.handle((req) =>
      reply.json({
        rows: rowIdsInPrompt(req.prompt).flatMap((id) => {
          const name = /company (\S+?)\./.exec(rowSection(req.prompt, id))?.[1] ?? "?";
          if (name === "omitted") return [];
          return [
            {
              id,
              industry: { value: `industry of ${name}`, confidence: 0.9 },
              employees: { value: name === "mistyped" ? "many" : 50, confidence: 0.8 },
              founded: { value: 1990, confidence: 0.95 },
            },
          ];
        }),
      }),
    );
    await h.query(
      "insert into partial (name) values ('good1'), ('good2'), ('omitted'), ('mistyped'), ('good3')",
    );
    await h.drain();
    expect(chatCalls(llm)).toHaveLength(1);

    const rows = await rowsOf("partial");
    expect(rows).toHaveLength(5);
    const byName = new Map(rows.map((r) => [r.name, r]));

    for (const name of ["good1", "good2", "good3"]) {
      const row = byName.get(name) as Row;
      expect(row.enrichment_status).toBe("done");
      expect(row.industry).toBe(`industry of ${name}`);
      expect(row.employees).toBe(50);
      expect(row.founded).toBe(1990);
      expect(row.enrichment_confidence).toBeCloseTo(0.8);
    }

    const omitted = byName.get("omitted") as Row;
    expect(omitted.enrichment_status).toBe("failed");
    expect(omitted.industry).toBeNull();
    expect(omitted.enrichment_next_at).not.toBeNull();
    expect(omitted.enrichment_state.errors?.[0]?.class).toBe("invalid_output");
    expect(omitted.enrichment_state.errors?.[0]?.message).toMatch(/missing/);

    const mistyped = byName.get("mistyped") as Row;
    expect(mistyped.employees).toBeNull();
    expect(mistyped.industry).toBe("industry of mistyped");
    expect(mistyped.founded).toBe(1990);
    expect(mistyped.enrichment_state.columns?.employees).toMatchObject({
      value: null,
      stage: "profile",
      reason: 'expected an integer, got string "many"',
    });
    expect(mistyped.enrichment_state.columns?.industry?.confidence).toBeCloseTo(0.9);
    // The missing value makes the row unsure: done, confidence 0, due again later.
    expect(mistyped.enrichment_status).toBe("done");
    expect(mistyped.enrichment_confidence).toBe(0);
    expect(dueIn(mistyped)).toBeGreaterThan(30 * 60_000);
  });

  it("falls back to the next backend of the cascade", async () => {
    llm.requests.length = 0;
    llm.handle(() => reply.status(500, { error: { message: "primary down" } }));
    llm2.handle(goodAnswer);
    await h.query("insert into fallback (name) values ('acme'), ('globex')");
    await h.drain();
    expect(chatCalls(llm)).toHaveLength(1);
    expect(chatCalls(llm2)).toHaveLength(1);

    const rows = await rowsOf("fallback");
    expect(rows).toHaveLength(2);
    for (const row of rows) {
      expect(row.enrichment_status).toBe("done");
      expect(row.industry).toBe(`industry of ${row.name}`);
      const stage = row.enrichment_state.stages?.profile;
      expect(stage?.status).toBe("ok");
      expect(stage?.backend).toBe("spare");
      expect(stage?.model).toBe("fake-spare");
      expect(stage?.calls).toHaveLength(2);
      expect(stage?.calls?.[0]).toMatchObject({
        backend: "dead",
        outcome: "error",
        errorClass: "server_error",
        status: 500,
      });
      expect(stage?.calls?.[1]).toMatchObject({ backend: "spare", outcome: "ok" });
      expect(stage?.usage?.input_tokens).toBeGreaterThan(0);
      expect(row.enrichment_state.usage?.input_tokens).toBeGreaterThan(0);
      expect(row.enrichment_state.usage?.output_tokens).toBeGreaterThan(0);
      expect(row.enrichment_state.usage?.cost_usd).toBeGreaterThan(0);
      expect(row.enrichment_state.usage?.by_backend?.spare?.input_tokens).toBeGreaterThan(0);
      expect(row.enrichment_state.columns?.industry?.backend).toBe("spare");
    }
  });

  it("fails with invalid_output when the only backend answers broken JSON", async () => {
    llm.handle(() => reply.brokenJson());
    await h.query("insert into broken (name) values ('garbled')");
    await h.drain();
    const row = await onlyRow("broken");
    expect(row.enrichment_status).toBe("failed");
    expect(row.industry).toBeNull();
    expect(row.enrichment_next_at).not.toBeNull();
    expect(row.enrichment_state.errors?.[0]).toMatchObject({
      class: "invalid_output",
      stage: "profile",
      permanent: false,
    });
    // The tokens of an answer that did not parse were still spent.
    expect(row.enrichment_state.usage?.input_tokens).toBeGreaterThan(0);
  });

  it("fails with timeout when the backend does not answer in time", async () => {
    llm.handle(() => reply.hang());
    await h.query("insert into slow (name) values ('sleepy')");
    const started = Date.now();
    await h.drain();
    expect(Date.now() - started).toBeLessThan(10_000);
    const row = await onlyRow("slow");
    expect(row.enrichment_status).toBe("failed");
    expect(row.enrichment_attempts).toBe(1);
    expect(row.enrichment_next_at).not.toBeNull();
    expect(row.enrichment_state.errors?.[0]).toMatchObject({
      class: "timeout",
      stage: "profile",
      permanent: false,
    });
    expect(row.enrichment_state.stages?.profile?.calls?.[0]).toMatchObject({
      backend: "slow",
      outcome: "error",
      errorClass: "timeout",
    });
  });
});
