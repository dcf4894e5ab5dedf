import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { estimatePipeline } from "../src/cli/estimate-pipeline.ts";
import { countChatTokens, countTokens } from "../src/llm/count-tokens.ts";
import { readCostReport } from "../src/sql/cost-report.ts";
import {
  keyInSection,
  reply,
  rowIdsInPrompt,
  startFakeLlm,
  type FakeLlm,
} from "./support/fake-llm-server.ts";
import { startHarness, type Harness } from "./support/gleaner-harness.ts";

/**
 * `gleaner estimate` before a run and `gleaner cost` after it, against a fake LLM that bills with
 * the real tokenizer and answers with labels of realistic, varying lengths.
 */
const ROOT = new URL("..", import.meta.url).pathname;
const WORDS = "bright quiet large early modern local simple final major public".split(" ");
let llm: FakeLlm;
let h: Harness;
let dir: string;
let configFile: string;

beforeAll(async () => {
  llm = await startFakeLlm();
  llm.handle((req) => {
    const content = JSON.stringify({
      rows: rowIdsInPrompt(req.prompt).map((id) => {
        const key = Number(keyInSection(req.prompt, id));
        const label = Array.from({ length: 2 + (key % 6) }, (_, i) => WORDS[(key + i) % 10]);
        return { id, label: { value: label.join(" "), confidence: 0.9 } };
      }),
    });
    return reply.text(content, {
      usage: {
        prompt_tokens: countChatTokens(req.system, req.prompt, "gpt-4o-mini"),
        completion_tokens: countTokens(content, "gpt-4o-mini"),
      },
    });
  });
  const yaml = `
llm:
  backends:
    - name: paid
      base_url: ${llm.url}
      model: gpt-4o-mini
      price: { input_per_million: 0.15, output_per_million: 0.6 }
pipelines:
  items:
    table: items
    inputs: [name]
    outputs: { label: { type: text, description: "A short label for the item" } }
    batch_size: 5
    stages:
      - { name: label, kind: llm, backends: [paid], prompt: "Label {{name}} #{{id}}", outputs: [label] }
`;
  h = await startHarness("estimate", yaml, {
    beforeMigrate: "create sequence side_effect",
  });
  dir = mkdtempSync(join(tmpdir(), "gleaner-estimate-"));
  configFile = join(dir, "gleaner.yaml");
  writeFileSync(configFile, yaml);
  await h.query(
    "insert into items (name) select 'item number ' || i || ' of the catalogue' from generate_series(1, 40) i",
  );
}, 120_000);

afterAll(async () => {
  await h?.close();
  await llm?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ["bin/gleaner.js", ...args, "--config", configFile],
      { cwd: ROOT, env: { ...process.env, DATABASE_URL: h.testDb.url }, timeout: 60_000 },
      (error, stdout, stderr) =>
        resolve({ code: error ? (error.code as number) : 0, stdout, stderr }),
    );
  });
}

it("estimates the due rows from rendered prompts, then cost reports what the run spent", async () => {
  const pipeline = h.app.runtime.pipelines.get("items")!.pipeline;
  const before = await estimatePipeline(h.app.database.db, h.app.config, pipeline, { limit: 10 });
  expect(before).toMatchObject({ matching_rows: 40, sampled_rows: 10 });
  expect(before.stages[0]).toMatchObject({
    stage: "label",
    basis: "rendered",
    tokenizer: "o200k_base",
    calls: 8,
    answer_size_from: "schema",
    cache_hit_ratio: 0,
  });
  // The command prints the same as JSON on stdout; nothing was sent to the LLM.
  const printed = await cli(["estimate", "items", "--json", "--limit", "10"]);
  expect(printed.code).toBe(0);
  expect(JSON.parse(printed.stdout)).toMatchObject({
    matching_rows: 40,
    total_usd: before.total_usd,
  });
  expect(llm.requests).toHaveLength(0);

  await h.sweep();
  await h.drain(150_000);
  const actual = (await readCostReport(h.app.database.db, "gleaner", "items", "stage"))[0]!;
  expect(actual).toMatchObject({ group: "label", calls: 8 });
  const error = (before.total_usd - actual.cost_usd) / actual.cost_usd;
  console.error(
    `estimate $${before.total_usd.toFixed(6)} vs actual $${actual.cost_usd.toFixed(6)}: error ${(error * 100).toFixed(1)}%`,
  );
  expect(Math.abs(error)).toBeLessThan(0.25);

  const table = await cli(["cost", "items", "--by", "row"]);
  expect(table.code).toBe(0);
  expect(table.stdout.split("\n")[0]).toMatch(
    /^row\s+calls\s+input tokens\s+output tokens\s+cost$/,
  );
  expect(table.stdout).toMatch(/^total\s+8\s/m);

  // Asked again, the same questions are expected from the answer cache: nothing to pay.
  await h.query("update items set label = null");
  const again = await estimatePipeline(h.app.database.db, h.app.config, pipeline, { limit: 40 });
  expect(again.stages[0]).toMatchObject({
    answer_size_from: "ledger",
    cache_hit_ratio: 1,
    cost_usd: 0,
  });
}, 240_000);

it("runs --where read-only and names it when it fails", async () => {
  const writing = await cli(["estimate", "items", "--where", "nextval('side_effect') > 0"]);
  expect(writing.code).toBe(1);
  expect(writing.stderr).toContain(
    `--where "nextval('side_effect') > 0" failed: it tried to write; --where must only read`,
  );
  const matching = await cli(["estimate", "items", "--where", "id <= 3"]);
  expect(matching.stdout).toMatch(/^pipeline items: 3 rows match; prompts rendered for 3$/m);
}, 240_000);
