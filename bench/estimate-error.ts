/**
 * How far `gleaner estimate` is from what a run then costs: the demo's 300 organisations
 * (demo/organisations.csv, demo/truth.json) through an `llm` stage filling five fields, against a
 * fake LLM that answers like a real one (the true value, a confidence, JSON spaced as models
 * write it) and bills with the real tokenizer. Prints the estimate (before the run), the actual
 * cost from the ledger (after), the error, and the cost per filled cell.
 *
 *   node --import tsx bench/estimate-error.ts
 */
import { readFileSync } from "node:fs";
import { pino } from "pino";
import { openGleaner } from "../src/app/open-gleaner.ts";
import { estimatePipeline } from "../src/cli/estimate-pipeline.ts";
import { parseConfig } from "../src/config/load-config.ts";
import { countChatTokens, countTokens } from "../src/llm/count-tokens.ts";
import { readCostReport } from "../src/sql/cost-report.ts";
import { sweepPipeline } from "../src/sweep/sweep-pipeline.ts";
import { drain } from "../src/worker/drain.ts";
import {
  reply,
  rowIdsInPrompt,
  rowSection,
  startFakeLlm,
} from "../test/support/fake-llm-server.ts";
import { createBenchDatabase, fmt } from "./support/bench-database.ts";

const MODEL = "gpt-4o-mini";
const FIELDS = ["industry", "founded", "employees", "city", "country"];
const truth = JSON.parse(readFileSync("demo/truth.json", "utf8")) as Record<
  string,
  Record<string, { value: unknown }>
>;
const llm = await startFakeLlm();
llm.handle((req) => {
  const rows = rowIdsInPrompt(req.prompt).map((id) => {
    const domain = /domain (\S+)/.exec(rowSection(req.prompt, id))?.[1] ?? "";
    const facts = truth[domain] ?? {};
    return {
      id,
      ...Object.fromEntries(
        FIELDS.map((f) => [f, { value: facts[f]?.value ?? null, confidence: 0.86 }]),
      ),
    };
  });
  const content = JSON.stringify({ rows }, null, 2);
  return reply.text(content, {
    usage: {
      prompt_tokens: countChatTokens(req.system, req.prompt, MODEL),
      completion_tokens: countTokens(content, MODEL),
    },
  });
});

const database = await createBenchDatabase("estimate_error");
const yaml = `
llm:
  backends:
    - { name: mini, base_url: ${llm.url}, model: ${MODEL}, max_concurrency: 16,
        price: { input_per_million: 0.15, output_per_million: 0.6 } }
pipelines:
  orgs:
    table: orgs
    inputs: [name, domain]
    outputs:
      industry: { type: text, description: "The organisation's industry" }
      founded: { type: integer, description: "Year founded" }
      employees: { type: integer, description: "Number of employees" }
      city: { type: text, description: "City of the head office" }
      country: { type: text, description: "Country of the head office" }
    batch_size: 10
    stages:
      - { name: facts, kind: llm, backends: [mini], outputs: [industry, founded, employees, city, country],
          prompt: "{{name}}, domain {{domain}}" }
`;
const config = parseConfig(yaml, { env: { ...process.env, DATABASE_URL: database.url } });
const logger = pino({ level: "silent" });
const app = await openGleaner(config, {
  env: { DATABASE_URL: database.url },
  logger,
  migrate: true,
});
try {
  const csv = readFileSync("demo/organisations.csv", "utf8").trim().split("\n").slice(1);
  for (const line of csv) {
    const [name, domain] = line.split(",");
    await app.database.pool.query("insert into orgs (name, domain) values ($1, $2)", [
      name,
      domain,
    ]);
  }
  const pipeline = app.runtime.pipelines.get("orgs")!.pipeline;
  const estimate = await estimatePipeline(app.database.db, config, pipeline, { limit: 20 });
  await sweepPipeline(app.database.db, config, pipeline);
  await drain({ runtime: app.runtime, url: database.url, logger });
  const [actual] = await readCostReport(app.database.db, config.schema, "orgs", "stage");
  const { rows } = await app.database.pool.query<{ cells: number }>(
    `select (count(industry) + count(founded) + count(employees) + count(city) + count(country))::int as cells from orgs`,
  );
  const cells = rows[0]?.cells ?? 0;
  const spent = actual?.cost_usd ?? 0;
  const error = (estimate.total_usd - spent) / spent;
  const stage = estimate.stages[0]!;
  console.log(`estimate-error: ${csv.length} rows, sample of ${estimate.sampled_rows} rendered`);
  console.log(
    `  estimate: ${stage.calls} calls, ${fmt(stage.input_tokens)} in / ${fmt(stage.output_tokens)} out tokens (${stage.tokenizer}), $${estimate.total_usd.toFixed(6)}`,
  );
  console.log(
    `  actual:   ${fmt(actual?.calls ?? 0)} calls, ${fmt(actual?.input_tokens ?? 0)} in / ${fmt(actual?.output_tokens ?? 0)} out tokens, $${spent.toFixed(6)}`,
  );
  console.log(`  error: ${(error * 100).toFixed(1)}%`);
  console.log(
    `  cost per filled cell: $${(spent / cells).toFixed(8)} (${cells} cells, live calls; batch mode is another helper's)`,
  );
} finally {
  await app.close();
  await llm.close();
  await database.drop();
}
