/**
 * Web research on the bundled demo web (demo/corpus, 300 organisations, demo/truth.json):
 *
 * 1. Evidence recall: the fraction of rows for which a page holding the true value of every
 *    known column reached the extraction prompt (prompt-only: structured data off, so every
 *    column must come through the prompt), and reached extraction at all (structured data on).
 * 2. Tokens per row of the extract stage with batch-level calls (batch_size 10) against one row
 *    per call (batch_size 1), same rows, same pages, measured in the same run.
 *
 * The LLM is a fake on loopback that answers null for every field: what is measured is what
 * Gleaner sends. Tokens are the prompt's characters / 4 (system, user message and the JSON
 * schema sent as response_format) plus the answer's.
 *
 *   node --import tsx bench/evidence-recall.ts
 */
import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { pino } from "pino";
import { Registry } from "prom-client";
import { openGleaner } from "../src/app/open-gleaner.ts";
import { parseConfig } from "../src/config/load-config.ts";
import { startHttpServer } from "../src/http/start-http-server.ts";
import type { RowState } from "../src/pipeline/row-state.ts";
import { servedCorpora } from "../src/search/corpus-folders.ts";
import type { ExtractData } from "../src/stages/extract-stage.ts";
import { drain } from "../src/worker/drain.ts";
import { rowIdsInPrompt, reply, startFakeLlm } from "../test/support/fake-llm-server.ts";
import { createBenchDatabase, fmt } from "./support/bench-database.ts";

interface Truth {
  [domain: string]: Record<string, { value: unknown; urls: string[] }>;
}
const COLUMNS = ["industry", "founded", "employees", "city", "country"];
const truth = JSON.parse(readFileSync("demo/truth.json", "utf8")) as Truth;

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

const llm = await startFakeLlm();
const tokensByStage = new Map<string, { prompt: number; answer: number; calls: number }>();
llm.handle((req) => {
  const fields = [...req.prompt.matchAll(/^- ([a-z_]+) \(/gm)].map((m) => m[1] as string);
  const answer = JSON.stringify({
    rows: rowIdsInPrompt(req.prompt).map((id) => ({
      id,
      ...Object.fromEntries(fields.map((f) => [f, { value: null, confidence: 0, sources: [] }])),
    })),
  });
  const format = req.responseFormat as { json_schema?: { name?: string } } | undefined;
  const stage = format?.json_schema?.name ?? "unknown";
  const t = tokensByStage.get(stage) ?? { prompt: 0, answer: 0, calls: 0 };
  const chars =
    (req.system ?? "").length + req.prompt.length + JSON.stringify(req.responseFormat ?? "").length;
  t.prompt += chars / 4;
  t.answer += answer.length / 4;
  t.calls++;
  tokensByStage.set(stage, t);
  return reply.text(answer);
});

const port = await freePort();
const database = await createBenchDatabase("research");
const pipeline = (table: string, extract: string, batch: number, structured: boolean) => `
  ${table}:
    table: public.${table}
    inputs: [name, domain]
    seed: demo/organisations.csv
    outputs:
      industry: { type: text, description: "The organisation's primary industry" }
      founded: { type: integer, description: "Year the organisation was founded" }
      employees: { type: integer, description: "Number of employees" }
      city: { type: text, description: "City of the headquarters" }
      country: { type: text, description: "Country of the headquarters, full English name" }
    batch_size: ${batch}
    # What the stages bring to the first extraction is measured here; the fake answers null to
    # everything, so every row would climb the whole ladder (bench/hard-web.ts measures that).
    escalate: false
    stages:
      - { name: plan, kind: queries, templates: ["{{name}}", "{{name}} founded employees headquarters"] }
      - { name: find, kind: search, provider: demo }
      - { name: choose, kind: select, max_urls: 3 }
      - { name: read_pages, kind: crawl, max_depth: 1, strategy: selective, max_pages: 5 }
      - name: ${extract}
        kind: extract
        backends: [fake]
        structured_data: ${structured}
        outputs: [industry, founded, employees, city, country]`;
const config = parseConfig(
  `
http: { host: 127.0.0.1, port: ${port} }
llm:
  backends:
    - { name: fake, base_url: ${llm.url}, model: fake, max_concurrency: 32 }
search:
  providers:
    demo: { provider: local, folder: demo/corpus }
pipelines:${pipeline("recall_batch", "extract_batch", 10, false)}${pipeline("recall_single", "extract_single", 1, false)}${pipeline("recall_structured", "extract_structured", 10, true)}
`,
  { file: "gleaner.yaml", env: { DATABASE_URL: database.url } },
);
const logger = pino({ level: "warn" });
const app = await openGleaner(config, {
  env: { DATABASE_URL: database.url },
  logger,
  migrate: true,
});
const http = await startHttpServer({
  host: "127.0.0.1",
  port,
  registry: new Registry(),
  database: app.database,
  schema: config.schema,
  corpora: servedCorpora(config),
});

const started = performance.now();
const result = await drain({ runtime: app.runtime, url: database.url, logger, timeoutMs: 600_000 });
const seconds = (performance.now() - started) / 1000;
if (result.timedOut) throw new Error("drain timed out");

const base = servedCorpora(config)[0]?.baseUrl ?? "";
async function recall(table: string, extract: string, withStructured: boolean) {
  const rows = (
    await app.database.pool.query<{ domain: string; enrichment_state: RowState }>(
      `select domain, enrichment_state from ${table}`,
    )
  ).rows;
  let recalled = 0;
  const perColumn = Object.fromEntries(COLUMNS.map((c) => [c, { reached: 0, known: 0 }]));
  for (const row of rows) {
    const data = row.enrichment_state.stages?.[extract]?.data as ExtractData | undefined;
    const reached = new Set(data?.prompt_urls ?? []);
    if (withStructured) for (const url of Object.values(data?.structured ?? {})) reached.add(url);
    let all = true;
    for (const column of COLUMNS) {
      const t = truth[row.domain]?.[column];
      if (!t || t.value === null) continue;
      const counts = perColumn[column] as { reached: number; known: number };
      counts.known++;
      if (t.urls.some((u) => reached.has(base + u))) counts.reached++;
      else all = false;
    }
    if (all) recalled++;
  }
  return { rows: rows.length, recalled, perColumn };
}

console.log(
  `demo web: ${fmt(seconds, 1)} s for 3 pipelines × 300 rows (search, select, crawl, extract)`,
);
for (const [table, extract, structured, label] of [
  ["recall_batch", "extract_batch", false, "prompt only, batch 10"],
  ["recall_single", "extract_single", false, "prompt only, batch 1"],
  ["recall_structured", "extract_structured", true, "structured data + prompt, batch 10"],
] as const) {
  const r = await recall(table, extract, structured);
  const columns = Object.entries(r.perColumn)
    .map(([c, v]) => `${c} ${fmt((100 * v.reached) / Math.max(1, v.known), 1)}%`)
    .join(", ");
  console.log(
    `evidence recall (${label}): ${r.recalled}/${r.rows} rows = ${fmt((100 * r.recalled) / r.rows, 1)}% (aim ≥ 95%); per column: ${columns}`,
  );
}
const tokens = (stage: string) => {
  const t = tokensByStage.get(`${stage}_answer`) ?? { prompt: 0, answer: 0, calls: 0 };
  return { ...t, perRow: (t.prompt + t.answer) / 300 };
};
const batch = tokens("extract_batch");
const single = tokens("extract_single");
const structured = tokens("extract_structured");
console.log(
  `extract tokens per row: batch-level ${fmt(batch.perRow)} (${batch.calls} calls), one row per call ${fmt(single.perRow)} (${single.calls} calls): ratio ${fmt((100 * batch.perRow) / single.perRow, 1)}% (aim ≤ 60%)`,
);
console.log(
  `with structured data first (batch 10): ${fmt(structured.perRow)} tokens per row, ${structured.calls} calls`,
);

await http.close();
await app.close();
await llm.close();
if (!process.env.BENCH_KEEP) await database.drop();
