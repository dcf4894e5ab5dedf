import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RowState } from "../src/pipeline/row-state.ts";
import {
  answerRows,
  reply,
  rowText,
  startFakeLlm,
  type FakeLlm,
} from "./support/fake-llm-server.ts";
import { startHarness, type Harness } from "./support/gleaner-harness.ts";

/**
 * The dead letter from plain SQL, on real PostgreSQL with the fake LLM: `gleaner.dead_letter`
 * lists every pipeline's exhausted rows with their last error, and a user's UPDATE of the status
 * (or the attempts) sends any settled row back, exhausted and never-filled ones included.
 */

let llm: FakeLlm;
let h: Harness;
/** Names whose rows the fake refuses with a 400 (a permanent error). */
const refused = new Set<string>(["Broken", "Gone"]);
/** Names whose rows the fake answers with 503 (a retryable error). */
const unavailable = new Set<string>(["Flaky"]);

const config = () => `
llm:
  cache_ttl: 0s
  backends:
    - { name: fake, base_url: ${llm.url}, model: fake, timeout: 10s }
pipelines:
  leads:
    table: public.leads
    inputs: [name]
    outputs:
      industry: { type: text, description: "Industry" }
    retry: { max_attempts: 3, delays: [1h] }
    stages:
      - { name: fill, kind: llm, backends: [fake], prompt: "{{name}}", outputs: [industry], batch_size: 1 }
  tags:
    table: public.tags
    prefix: tag_
    inputs: [label]
    outputs:
      tag: { type: text, description: "Tag" }
    stages:
      - { name: tag_it, kind: llm, backends: [fake], prompt: "{{label}}", outputs: [tag], batch_size: 1 }
`;

beforeAll(async () => {
  llm = await startFakeLlm();
  const answer = answerRows((id, prompt) => {
    const text = rowText(prompt, id);
    const value = text === "Empty" ? null : `about ${text}`;
    const field = prompt.includes("- tag (") ? "tag" : "industry";
    return { [field]: { value, confidence: value === null ? 0 : 0.9 } };
  });
  llm.handle((req) => {
    if ([...refused].some((name) => req.prompt.includes(name))) return reply.status(400);
    if ([...unavailable].some((name) => req.prompt.includes(name))) return reply.status(503);
    return answer(req);
  });
  h = await startHarness("dead_letter", config());
  await h.query("insert into leads (name) values ('Broken'), ('Empty'), ('Fine'), ('Flaky')");
  await h.query("insert into tags (label) values ('Gone'), ('Kept')");
  await h.drain();
});

afterAll(async () => {
  await h?.close();
  await llm?.close();
});

interface DeadRow {
  pipeline: string;
  row_key: string;
  attempts: number;
  error_class: string;
  error_message: string;
  error_stage: string;
  failed_at: Date;
  last_run: { outcome: string };
}

const deadLetter = () =>
  h.query<DeadRow>("select * from gleaner.dead_letter order by pipeline, row_key");

const leadRow = async (name: string) => {
  const [row] = await h.query<{
    industry: string | null;
    enrichment_status: string;
    enrichment_attempts: number;
    enrichment_state: RowState;
    due: boolean;
  }>(
    `select industry, enrichment_status, enrichment_attempts, enrichment_state,
        enrichment_next_at <= now() as due
      from leads where name = $1`,
    [name],
  );
  if (!row) throw new Error(`no lead ${name}`);
  return row;
};

describe("gleaner.dead_letter", () => {
  it("lists every pipeline's exhausted rows with their last error and attempts, and nothing else", async () => {
    expect((await leadRow("Fine")).enrichment_status).toBe("done");
    expect((await leadRow("Empty")).enrichment_status).toBe("done");
    expect((await leadRow("Flaky")).enrichment_status).toBe("failed");
    const rows = await deadLetter();
    expect(rows.map((r) => [r.pipeline, r.row_key])).toEqual([
      ["leads", "1"],
      ["tags", "1"],
    ]);
    const [lead, tag] = rows;
    expect(lead).toMatchObject({
      attempts: 1,
      error_class: "bad_request",
      error_stage: "fill",
      last_run: { outcome: "exhausted" },
    });
    expect(lead?.error_message).toContain("400");
    expect(lead?.failed_at).toBeInstanceOf(Date);
    // A pipeline with another prefix reads its own columns.
    expect(tag).toMatchObject({ attempts: 1, error_class: "bad_request", error_stage: "tag_it" });
  });

  it("reads the failures index, not the table", async () => {
    await h.query("set enable_seqscan = off");
    try {
      const plan = await h.query<{ "QUERY PLAN": string }>(
        `explain select * from leads t where t.enrichment_status in ('failed', 'exhausted')
           and t.enrichment_status = 'exhausted'`,
      );
      expect(plan.map((r) => r["QUERY PLAN"]).join("\n")).toContain("gleaner_leads_failures");
    } finally {
      await h.query("reset enable_seqscan");
    }
  });

  it("a status reset takes an exhausted row out of it, and the row runs again", async () => {
    await h.query("update leads set enrichment_status = 'pending' where name = 'Broken'");
    const row = await leadRow("Broken");
    expect(row).toMatchObject({ enrichment_status: "pending", enrichment_attempts: 0, due: true });
    expect(row.enrichment_state.reset?.reason).toBe("status_reset");
    expect((await deadLetter()).map((r) => r.pipeline)).toEqual(["tags"]);
    refused.delete("Broken");
    await h.drain();
    expect(await leadRow("Broken")).toMatchObject({
      enrichment_status: "done",
      industry: "about Broken",
    });
  });

  it("an attempts reset does the same, under another prefix too", async () => {
    await h.query("update tags set tag_attempts = 0 where label = 'Gone'");
    const [row] = await h.query<{ tag_status: string; tag_state: RowState; due: boolean }>(
      "select tag_status, tag_state, tag_next_at <= now() as due from tags where label = 'Gone'",
    );
    expect(row).toMatchObject({ tag_status: "pending", due: true });
    expect(row?.tag_state.reset?.reason).toBe("attempts_reset");
    expect(await deadLetter()).toEqual([]);
  });

  it("makes a done row that never got a value pending, by its status or by its attempts", async () => {
    const empty = await leadRow("Empty");
    expect(empty).toMatchObject({ industry: null, enrichment_status: "done" });
    await h.query("update leads set enrichment_status = 'pending' where name = 'Empty'");
    expect(await leadRow("Empty")).toMatchObject({ enrichment_status: "pending", due: true });

    await h.drain();
    expect((await leadRow("Empty")).enrichment_status).toBe("done");
    await h.query("update leads set enrichment_attempts = 0 where name = 'Empty'");
    const again = await leadRow("Empty");
    expect(again).toMatchObject({ enrichment_status: "pending", due: true });
    expect(again.enrichment_state.reset?.reason).toBe("attempts_reset");
  });

  it("makes a failed row waiting for its retry due at once", async () => {
    const flaky = await leadRow("Flaky");
    expect(flaky).toMatchObject({ enrichment_status: "failed", due: false });
    await h.query("update leads set enrichment_status = 'pending' where name = 'Flaky'");
    expect(await leadRow("Flaky")).toMatchObject({
      enrichment_status: "pending",
      enrichment_attempts: 0,
      due: true,
    });
  });

  it("keeps working when a pipeline's table is dropped: the view does not hold it", async () => {
    await h.query(
      "update tags set tag_status = 'exhausted', tag_next_at = null where label = 'Kept'",
    );
    // (The row reset above may have run and failed again meanwhile: the app sweeps on its own.)
    expect((await deadLetter()).map((r) => [r.pipeline, r.row_key])).toContainEqual(["tags", "2"]);
    await h.query("drop table tags");
    expect(await deadLetter()).toEqual([]);
  });
});
