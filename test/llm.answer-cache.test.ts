import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openGleaner, type Gleaner } from "../src/app/open-gleaner.ts";
import { parseConfig } from "../src/config/load-config.ts";
import { withAnswerCache } from "../src/llm/answer-cache.ts";
import { createLlmBackend } from "../src/llm/llm-backend.ts";
import type { LlmBackendConfig } from "../src/llm/llm-types.ts";
import { createMetrics } from "../src/metrics/create-metrics.ts";
import type { RowState } from "../src/pipeline/row-state.ts";
import { createLlmAnswerStore } from "../src/sql/llm-cache.ts";
import { drain } from "../src/worker/drain.ts";
import {
  answerRows,
  rowText,
  startFakeLlm,
  type FakeLlm,
  type FakeLlmRequest,
  type Handler,
} from "./support/fake-llm-server.ts";
import { startFixtureSite, type FixtureSite } from "./support/fixture-site.ts";
import { makeDue, quietLogger, startHarness, type Harness } from "./support/gleaner-harness.ts";
import { parseSamples, sum, value } from "./support/prometheus-text.ts";

/**
 * The shared LLM answer cache on real PostgreSQL with the fake LLM on loopback: a question
 * asked before, of the same model, costs nothing, in this process or another; a changed
 * prompt, model or page is another question; expired and unvalidated answers are not served.
 */

let llm: FakeLlm;
let site: FixtureSite;
let h: Harness;

const yaml = (prompt = "Label: {{text}}", model = "fake") => `
llm:
  cache_ttl: 1h
  backends:
    - name: fake
      base_url: ${llm.url}
      model: ${model}
      timeout: 10s
      price: { input_per_million: 1, output_per_million: 2 }
crawl:
  allow: [127.0.0.1]
  per_host_delay: 0ms
  javascript: never
pipelines:
  notes:
    table: public.notes
    inputs: [text]
    outputs: { label: { type: text, description: "A label" } }
    min_confidence: 0.5
    lease: 1s
    retry: { max_attempts: 5, delays: [1m] }
    stages:
      - { name: label, kind: llm, backends: [fake], prompt: "${prompt}", outputs: [label] }
  batched:
    table: public.batched
    inputs: [text]
    outputs: { label: { type: text, description: "A label" } }
    batch_size: 5
    job_size: 10
    stages:
      - { name: label, kind: llm, backends: [fake], prompt: "Label: {{text}}", outputs: [label] }
  pages:
    table: public.pages
    inputs: [name, url]
    outputs: { industry: { type: text, description: "Industry" } }
    stages:
      - { name: fetch, kind: crawl, url_input: url, max_depth: 0 }
      - { name: read, kind: extract, backends: [fake], structured_data: false, outputs: [industry] }
  counts:
    table: public.counts
    inputs: [text]
    outputs: { n: { type: integer, description: "A count" } }
    min_confidence: 0.5
    retry: { max_attempts: 5, delays: [1m] }
    stages:
      - { name: count, kind: llm, backends: [fake], prompt: "Count: {{text}}", outputs: [n] }
`;

/**
 * Labels each row with its text in capitals, confidence from the text ("low" → 0.3); the
 * extract stage of `pages` gets an industry from the first source.
 */
const labeller: Handler = (req) =>
  req.prompt.includes("## Sources")
    ? answerRows(() => ({ industry: { value: "Fixtures", confidence: 0.9, sources: ["S1"] } }))(req)
    : answerRows((id, prompt) => {
        const text = rowText(prompt, id).replace(/^.*?: /, "");
        return {
          label: { value: text.toUpperCase(), confidence: text.includes("low") ? 0.3 : 0.9 },
        };
      })(req);

beforeAll(async () => {
  site = await startFixtureSite();
  llm = await startFakeLlm();
  llm.handle(labeller);
  h = await startHarness("llm_answer_cache", yaml());
});

afterAll(async () => {
  await h?.close();
  await Promise.all([llm?.close(), site?.close()]);
});

function chats(): FakeLlmRequest[] {
  return llm.requests.filter((r) => r.path.endsWith("/chat/completions"));
}

/** Another Gleaner process's runtime on the test database, with this config. */
async function another(text: string): Promise<Gleaner> {
  const config = parseConfig(text, { env: { ...process.env, DATABASE_URL: h.testDb.url } });
  return openGleaner(config, {
    env: { DATABASE_URL: h.testDb.url },
    logger: quietLogger,
    migrate: true,
  });
}

async function drainWith(app: Gleaner): Promise<void> {
  const result = await drain({
    runtime: app.runtime,
    url: h.testDb.url,
    logger: quietLogger,
    timeoutMs: 30_000,
  });
  if (result.timedOut) throw new Error(`drain timed out: ${JSON.stringify(result.progress)}`);
}

interface NoteRow {
  text: string;
  label: string | null;
  enrichment_status: string;
  enrichment_attempts: number;
  enrichment_state: RowState;
}

const notes = (where = "true") =>
  h.query<NoteRow>(`select * from notes where ${where} order by id`);

/** A user making the rows pending again: the stage that fills `label` answers again. */
const reprocess = (where: string) =>
  h.query(`update notes set enrichment_status = 'pending' where ${where}`);

describe("the LLM answer cache", () => {
  it("lets another process answer a question this one paid for, free", async () => {
    await h.query("insert into notes (text) values ('alpha'), ('beta'), ('gamma')");
    await h.drain();
    expect(chats()).toHaveLength(1);
    const first = await notes();
    expect(first.map((r) => r.label)).toEqual(["ALPHA", "BETA", "GAMMA"]);

    await reprocess("true");
    const other = await another(yaml());
    const metrics = createMetrics(other.runtime);
    try {
      await drainWith(other);
      const samples = parseSamples(await metrics.registry.metrics());
      expect(value(samples, "gleaner_llm_cache_lookups_total", { outcome: "hit" })).toBe(1);
      expect(value(samples, "gleaner_llm_cache_lookups_total", { outcome: "miss" })).toBe(0);
      expect(sum(samples, "gleaner_llm_cost_usd_total")).toBe(0);
      expect(sum(samples, "gleaner_llm_calls_total")).toBe(0);
    } finally {
      metrics.close();
      await other.close();
    }
    expect(chats()).toHaveLength(1);
    const again = await notes();
    expect(again.map((r) => [r.label, r.enrichment_status])).toEqual([
      ["ALPHA", "done"],
      ["BETA", "done"],
      ["GAMMA", "done"],
    ]);
    for (const [i, row] of again.entries()) {
      const [call] = row.enrichment_state.stages?.label?.calls ?? [];
      expect(call).toMatchObject({ outcome: "cached", costUsd: 0, inputTokens: 0 });
      expect(call?.savedInputTokens).toBeGreaterThan(0);
      expect(call?.savedCostUsd).toBeGreaterThan(0);
      // What the rows cost is what was paid: the first run, not the hit.
      expect(row.enrichment_state.usage).toEqual(first[i]?.enrichment_state.usage);
    }
  });

  it("asks again when the prompt or the model changed, and not when only the process did", async () => {
    const before = chats().length;
    for (const config of [yaml("Name a label: {{text}}"), yaml(undefined, "fake-2"), yaml()]) {
      await reprocess("true");
      const other = await another(config);
      try {
        await drainWith(other);
      } finally {
        await other.close();
      }
    }
    const asked = chats().slice(before);
    expect(asked.map((r) => [r.model, r.prompt.includes("Name a label")])).toEqual([
      ["fake", true],
      ["fake-2", false],
    ]);
  });

  it("asks again when the page text it reads changed", async () => {
    const about = site.url("/about.html");
    await h.query("insert into pages (name, url) values ('Fixture Works', $1)", [about]);
    const before = chats().length;
    await h.drain();
    expect(chats().length).toBe(before + 1);
    const reread = async () => {
      await h.query("update pages set enrichment_status = 'pending'");
      await h.drain();
    };
    // The crawl is reused, extract reads the same text again: answered from the cache.
    await reread();
    expect(chats().length).toBe(before + 1);
    // The page says something new (as a later crawl would have stored it): a new question.
    await h.query(
      "update gleaner.page_cache set markdown = markdown || ' Fixture Works also makes hinges.' where url = $1",
      [about],
    );
    await reread();
    expect(chats().length).toBe(before + 2);
    expect(chats().at(-1)?.prompt).toContain("also makes hinges");
    const [row] = await h.query<{ industry: string; enrichment_status: string }>(
      "select industry, enrichment_status from pages",
    );
    expect(row).toEqual({ industry: "Fixtures", enrichment_status: "done" });
  });

  it("asks again once an answer is older than llm.cache_ttl, and prunes expired answers", async () => {
    const before = chats().length;
    await reprocess("true");
    await h.drain();
    expect(chats().length).toBe(before);
    await h.query("update gleaner.llm_cache set written_at = now() - interval '61 minutes'");
    await reprocess("true");
    await h.drain();
    expect(chats().length).toBe(before + 1);

    // Pruning: at most 500 expired answers a time, at most every 10 minutes unless a full
    // batch says more are waiting; fresh answers stay.
    const store = createLlmAnswerStore(h.app.database.db, "gleaner");
    await h.query(
      `insert into gleaner.llm_cache (key, backend, model, answer, input_tokens, output_tokens, cost_usd, written_at)
       select 'old-' || i, 'fake', 'fake', '{}', 1, 1, 0, now() - interval '2 hours'
       from generate_series(1, 600) i`,
    );
    const fresh = await h.query<{ n: number }>(
      "select count(*)::int as n from gleaner.llm_cache where written_at > now() - interval '1 hour'",
    );
    let clock = 0;
    const config = h.app.config.backends[0] as LlmBackendConfig;
    const cached = withAnswerCache(createLlmBackend(config), config, store, {
      ttlMs: 3_600_000,
      onError: (error) => {
        throw error;
      },
      now: () => clock,
    });
    const ask = async (text: string) => {
      const answer = await cached.complete({
        prompt: `### row r1\nLabel: ${text}`,
        schema: { type: "object" },
        schemaName: "prune_test",
      });
      await answer.remember?.();
    };
    const expired = async () =>
      (
        await h.query<{ n: number }>(
          "select count(*)::int as n from gleaner.llm_cache where key like 'old-%'",
        )
      )[0]?.n;
    await ask("one");
    expect(await expired()).toBe(100);
    // A full batch was deleted: the next write prunes again.
    await ask("two");
    expect(await expired()).toBe(0);
    await h.query(
      `insert into gleaner.llm_cache (key, backend, model, answer, input_tokens, output_tokens, cost_usd, written_at)
       values ('old-late', 'fake', 'fake', '{}', 1, 1, 0, now() - interval '2 hours')`,
    );
    clock += 60_000;
    await ask("three");
    expect(await expired()).toBe(1);
    clock += 10 * 60_000;
    await ask("four");
    expect(await expired()).toBe(0);
    const [after] = await h.query<{ n: number }>(
      "select count(*)::int as n from gleaner.llm_cache where written_at > now() - interval '1 hour'",
    );
    expect(after?.n).toBe((fresh[0]?.n ?? 0) + 4);
  });

  it("keeps only answers that passed the stage's validation", async () => {
    const entries = async () =>
      (await h.query<{ n: number }>("select count(*)::int as n from gleaner.llm_cache"))[0]?.n;
    llm.handle((req) =>
      answerRows((id, prompt) => {
        const text = rowText(prompt, id);
        // "many" is no integer: the value is refused, the row kept at confidence 0.
        return { n: { value: text.includes("bad") ? "many" : 3, confidence: 0.9 } };
      })(req),
    );
    try {
      const kept = await entries();
      await h.query("insert into counts (text) values ('good')");
      await h.drain();
      expect(await entries()).toBe((kept ?? 0) + 1);

      await h.query("insert into counts (text) values ('bad')");
      await h.drain();
      expect(await entries()).toBe((kept ?? 0) + 1);
      const [bad] = await h.query<{ n: number | null; enrichment_state: RowState }>(
        "select n, enrichment_state from counts where text = 'bad'",
      );
      expect(bad?.n).toBeNull();
      expect(bad?.enrichment_state.stages?.count?.status).toBe("stale");

      // Its re-check asks the same question again, and pays: nothing was kept to answer it.
      const before = chats().length;
      await makeDue(h, "counts");
      await h.drain();
      expect(chats().length).toBe(before + 1);
      expect(chats().at(-1)?.prompt).toContain("Count: bad");
    } finally {
      llm.handle(labeller);
    }
  });

  it("answers a retry after a failed write from the cache", async () => {
    // The first write of a label fails (a trigger of the user's), so the job fails after it
    // paid: its rows come back after the lease, and the retry asks the same question.
    await h.query(`
      create sequence label_writes;
      create function refuse_first_label() returns trigger language plpgsql as $$
      begin
        if new.label is not null and old.label is null and nextval('label_writes') = 1 then
          raise exception 'the first label write is refused';
        end if;
        return new;
      end $$;
      create trigger refuse_first_label before update on notes
        for each row execute function refuse_first_label();
    `);
    const before = chats().length;
    await h.query("insert into notes (text) values ('delta')");
    await h.drain();
    const [row] = await notes("text = 'delta'");
    expect(row).toMatchObject({ label: "DELTA", enrichment_status: "done" });
    expect(row?.enrichment_attempts).toBe(2);
    expect(chats().length).toBe(before + 1);
    expect(row?.enrichment_state.stages?.label?.calls?.[0]?.outcome).toBe("cached");
  });

  it("batches rows reset together as they were batched before, whatever their order on disk", async () => {
    await h.query("insert into batched (text) select 'item ' || i from generate_series(1, 30) i");
    const before = chats().length;
    await h.drain();
    expect(chats().length).toBe(before + 6);
    // New row versions in a scrambled order: the table is read in another order from now on.
    for (let i = 0; i < 30; i++)
      await h.query("update batched set text = text where id = $1", [((i * 7) % 30) + 1]);
    await h.query("update batched set enrichment_status = 'pending'");
    await h.drain();
    expect(chats().length).toBe(before + 6);
    const rows = await h.query<{ label: string; enrichment_state: RowState }>(
      "select label, enrichment_state from batched",
    );
    for (const row of rows)
      expect(row.enrichment_state.stages?.label?.calls?.[0]?.outcome).toBe("cached");
  });

  it("answers a low-confidence re-check with the same evidence from the cache", async () => {
    const before = chats().length;
    await h.query("insert into notes (text) values ('low tide')");
    await h.drain();
    const [first] = await notes("text = 'low tide'");
    expect(first?.enrichment_state.stages?.label?.status).toBe("stale");
    expect(chats().length).toBe(before + 1);

    await makeDue(h, "notes");
    await h.drain();
    const [again] = await notes("text = 'low tide'");
    expect(again?.enrichment_attempts).toBe(2);
    expect(again?.label).toBe("LOW TIDE");
    expect(again?.enrichment_state.stages?.label?.calls?.[0]?.outcome).toBe("cached");
    expect(chats().length).toBe(before + 1);
  });
});
