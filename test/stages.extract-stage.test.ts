import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfigError } from "../src/config/config-error.ts";
import { parseConfig } from "../src/config/load-config.ts";
import { createMetrics, type Metrics } from "../src/metrics/create-metrics.ts";
import type { RowState } from "../src/pipeline/row-state.ts";
import {
  reply,
  rowIdsInPrompt,
  rowSection,
  rowText,
  startFakeLlm,
  type FakeLlm,
  type FakeLlmRequest,
} from "./support/fake-llm-server.ts";
import { startHarness, type Harness } from "./support/gleaner-harness.ts";
import { parseSamples, sum } from "./support/prometheus-text.ts";

/**
 * The `extract` stage's LLM prompt through the real stage machine, with search snippets as the
 * evidence (a Serper-shaped server on loopback that knows only names starting with "known"):
 * the prompt template rendered for each row, the usage charged to the rows it asked about
 * only, and a row's inputs bounded.
 */

interface SerperFake {
  url: string;
  close(): Promise<void>;
}

async function startSerper(): Promise<SerperFake> {
  const server: Server = createServer((req, res) => {
    let raw = "";
    req.on("data", (c: Buffer) => (raw += c.toString()));
    req.on("end", () => {
      const q = String((JSON.parse(raw) as { q?: string }).q ?? "");
      const organic = q.startsWith("known")
        ? [
            {
              title: `${q} profile`,
              link: `https://directory.example/${encodeURIComponent(q)}`,
              snippet: `${q} makes fixtures.`,
            },
          ]
        : [];
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ organic }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

const PRICE = { input: 0.15, output: 0.6 };

function yaml(llmUrl: string, serperUrl: string, system = ""): string {
  return `
llm:
  backends:
    - name: fake
      base_url: ${llmUrl}
      model: fake
      timeout: 10s
      price: { input_per_million: ${PRICE.input}, output_per_million: ${PRICE.output} }
search:
  providers:
    web: { provider: serper, base_url: ${serperUrl}, api_key: test-key, timeout: 5s }
pipelines:
  orgs:
    table: public.orgs
    inputs: [name, blurb]
    outputs: { industry: { type: text, description: "Industry" } }
    batch_size: 10
    max_row_input_chars: 1000
    retry: { max_attempts: 1, delays: [1m] }
    stages:
      - { name: plan, kind: queries, templates: ["{{name}}"] }
      - { name: find, kind: search, provider: web }
      - name: read
        kind: extract
        backends: [fake]
        prompt: "You are an expert on {{name}}."
        outputs: [industry]${system}
`;
}

let serper: SerperFake;
let llm: FakeLlm;
let h: Harness;
let metrics: Metrics;

beforeAll(async () => {
  serper = await startSerper();
  llm = await startFakeLlm();
  h = await startHarness("extract_stage", yaml(llm.url, serper.url));
  metrics = createMetrics(h.app.runtime);
});

afterAll(async () => {
  metrics?.close();
  await h?.close();
  await Promise.all([llm?.close(), serper?.close()]);
});

function extractCalls(): FakeLlmRequest[] {
  return llm.requests.filter((r) => r.path.endsWith("/chat/completions"));
}

describe("extract stage prompts", () => {
  it("renders the prompt template for each row, charges only the rows asked, and bounds inputs", async () => {
    llm.handle((req) =>
      reply.json(
        {
          rows: rowIdsInPrompt(req.prompt).map((id) => ({
            id,
            industry: {
              value: `industry of ${/^name: (.*)$/m.exec(rowText(req.prompt, id))?.[1] ?? "?"}`,
              confidence: 0.9,
              sources: [/sources: (S\d+)/.exec(rowSection(req.prompt, id))?.[1] ?? "S1"],
            },
          })),
        },
        { usage: { prompt_tokens: 1001, completion_tokens: 77 } },
      ),
    );
    await h.query(
      `insert into orgs (name, blurb) values
         ('known alpha', 'short'), ('known beta', repeat('b', 5000)), ('known gamma', 'short'),
         ('nothing delta', 'short'), ('nothing epsilon', 'short')`,
    );
    await h.drain();

    // One call, for the three rows with evidence; each row's own instructions in its item.
    const calls = extractCalls();
    expect(calls).toHaveLength(1);
    const prompt = calls[0]?.prompt ?? "";
    const ids = rowIdsInPrompt(prompt);
    expect(ids.map((id) => /^name: (.*)$/m.exec(rowText(prompt, id))?.[1]).sort()).toEqual([
      "known alpha",
      "known beta",
      "known gamma",
    ]);
    for (const id of ids) {
      const text = rowText(prompt, id);
      const name = /^name: (.*)$/m.exec(text)?.[1] ?? "";
      expect(text).toContain(`instructions: You are an expert on ${name}.`);
    }
    // Nothing of one row is said for the whole chunk.
    expect(prompt.slice(0, prompt.indexOf("### row "))).not.toContain("expert on");
    // The 5,000-character blurb was cut to fit the row's 1,000 characters.
    expect(prompt.length).toBeLessThan(4000);

    const rows = await h.query<{
      name: string;
      industry: string | null;
      enrichment_state: RowState;
    }>("select name, industry, enrichment_state from orgs order by name");
    expect(rows.map((r) => [r.name, r.industry])).toEqual([
      ["known alpha", "industry of known alpha"],
      ["known beta", "industry of known beta"],
      ["known gamma", "industry of known gamma"],
      ["nothing delta", null],
      ["nothing epsilon", null],
    ]);
    const beta = rows.find((r) => r.name === "known beta");
    expect(beta?.enrichment_state.stages?.read?.truncated).toEqual({
      // max_row_input_chars 1000: the name kept whole, the blurb the rest.
      blurb: { chars: 5000, kept: 1000 - "known beta".length },
    });

    // The call's usage is split among the three rows it asked about; the others spent nothing.
    const perCall = (1001 * PRICE.input + 77 * PRICE.output) / 1e6;
    const cost = (name: string) =>
      rows.find((r) => r.name === name)?.enrichment_state.usage?.cost_usd ?? 0;
    expect(cost("nothing delta")).toBe(0);
    expect(cost("nothing epsilon")).toBe(0);
    const total = rows.reduce((n, r) => n + (r.enrichment_state.usage?.cost_usd ?? 0), 0);
    expect(Math.abs(total - perCall)).toBeLessThan(1e-9);
    const tokens = rows.reduce((n, r) => n + (r.enrichment_state.usage?.input_tokens ?? 0), 0);
    expect(tokens).toBe(1001);
    const samples = parseSamples(await metrics.registry.metrics());
    expect(Math.abs(sum(samples, "gleaner_llm_cost_usd_total") - total)).toBeLessThan(1e-9);
  });

  it("refuses a row field in the system message when the config loads", () => {
    let error: unknown;
    try {
      parseConfig(yaml(llm.url, serper.url, '\n        system: "About {{name}}"'), {
        env: { DATABASE_URL: h.testDb.url },
      });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).path).toBe("pipelines.orgs.stages[2].system");
    expect((error as ConfigError).message).toMatch(/\{\{name\}\} names a row field/);
  });
});
