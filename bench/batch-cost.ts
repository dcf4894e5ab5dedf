/**
 * Cost per filled cell on the offline demo (gleaner.yaml, demo/corpus, 300 organisations), live
 * and in batch mode: the same demo, the same answers (a fake model that knows demo/truth.json),
 * the prices of gleaner.yaml. Live: a fake chat completions server. Batch: the `primary` backend
 * switched to `mode: batch`, a fake Batch API, and the rounds a deployment's
 * gleaner_llm_batches task would run (drain, submit, apply) until no row waits.
 *
 * Cost is what the rows recorded (enrichment_state.usage.cost_usd, summed); a filled cell is
 * an output column that is not NULL.
 *
 *   node --import tsx bench/batch-cost.ts
 */
import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { pino } from "pino";
import { Registry } from "prom-client";
import { openGleaner } from "../src/app/open-gleaner.ts";
import { parseConfig } from "../src/config/load-config.ts";
import { startHttpServer } from "../src/http/start-http-server.ts";
import { applyEndedBatches } from "../src/llm/batch/apply-llm-batches.ts";
import { submitDueBatches } from "../src/llm/batch/submit-llm-batches.ts";
import { openAiClient } from "../src/llm/llm-backend.ts";
import { servedCorpora } from "../src/search/corpus-folders.ts";
import { drain } from "../src/worker/drain.ts";
import { startFakeBatchApi } from "../test/support/fake-batch-api.ts";
import {
  reply,
  rowIdsInPrompt,
  rowSection,
  startFakeLlm,
} from "../test/support/fake-llm-server.ts";
import { createBenchDatabase, fmt } from "./support/bench-database.ts";

interface Truth {
  [domain: string]: Record<string, { value: unknown }>;
}
const truth = JSON.parse(readFileSync("demo/truth.json", "utf8")) as Truth;

/** The answer a model that knows the demo gives: true values, a confidence, the first source. */
function answer(prompt: string): unknown {
  const fields = [...prompt.matchAll(/^- ([a-z_]+) \(/gm)].map((m) => m[1] as string);
  return {
    rows: rowIdsInPrompt(prompt).map((id) => {
      const section = rowSection(prompt, id);
      const domain = /^domain: (\S+)$/m.exec(section)?.[1] ?? "";
      const source = /sources: (S\d+)/.exec(section)?.[1];
      const facts = truth[domain] ?? {};
      return {
        id,
        ...Object.fromEntries(
          fields.map((f) => {
            const value = facts[f]?.value ?? null;
            const sources = value === null || !source ? [] : [source];
            return [f, { value, confidence: value === null ? 0 : 0.86, sources }];
          }),
        ),
      };
    }),
  };
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

const logger = pino({ level: "warn" });
const OUTPUTS = ["industry", "founded", "employees", "city", "country"];

async function run(label: string, batch: boolean, baseUrl: string) {
  const port = await freePort();
  const database = await createBenchDatabase(`batch_cost_${label}`);
  let yaml = readFileSync("gleaner.yaml", "utf8").replace(/^(\s+port:) 9464$/m, `$1 ${port}`);
  if (batch) yaml = yaml.replace(/^(\s+)optional: true$/m, "$1optional: true\n$1mode: batch");
  const env = { DATABASE_URL: database.url, OPENAI_BASE_URL: baseUrl, OPENAI_MODEL: "fake-bench" };
  const config = parseConfig(yaml, { file: "gleaner.yaml", env });
  const app = await openGleaner(config, { env, logger, migrate: true });
  const http = await startHttpServer({
    host: "127.0.0.1",
    port,
    registry: new Registry(),
    database: app.database,
    schema: config.schema,
    corpora: servedCorpora(config),
  });
  const started = performance.now();
  const drainAll = async () => {
    const r = await drain({ runtime: app.runtime, url: database.url, logger, timeoutMs: 900_000 });
    if (r.timedOut) throw new Error("drain timed out");
  };
  await drainAll();
  let rounds = 0;
  if (batch) {
    const backend = { ...config.backends[0]!, batch_window_ms: 0 };
    const client = openAiClient(backend);
    for (; rounds < 20; rounds++) {
      const waiting = await app.database.pool.query(
        "select 1 from organisations where enrichment_status = 'pending' and enrichment_state ? 'batch' limit 1",
      );
      if (waiting.rows.length === 0) break;
      await submitDueBatches(app.database.db, config.schema, backend, client);
      await applyEndedBatches(
        app.database.db,
        config.schema,
        config.workerSchema,
        backend,
        client,
        (name) => Promise.resolve(app.runtime.pipelines.get(name)?.pipeline),
        (m) => logger.warn(m),
      );
      await drainAll();
    }
  }
  const seconds = (performance.now() - started) / 1000;
  const result = await app.database.pool.query<{ cost: number; cells: number; done: number }>(
    `select coalesce(sum((enrichment_state -> 'usage' ->> 'cost_usd')::float8), 0) as cost,
       sum(${OUTPUTS.map((o) => `(${o} is not null)::int`).join(" + ")})::int as cells,
       count(*) filter (where enrichment_status = 'done')::int as done
     from organisations`,
  );
  await http.close();
  await app.close();
  if (!process.env.BENCH_KEEP) await database.drop();
  const r = result.rows[0] as { cost: number; cells: number; done: number };
  return { label, ...r, rounds, seconds };
}

const llm = await startFakeLlm();
llm.handle((req) => reply.text(JSON.stringify(answer(req.prompt), null, 2)));
const api = await startFakeBatchApi();
// The same text as the live answer, so both runs pay for the same tokens.
api.answer((line) => ({ content: JSON.stringify(answer(line.prompt), null, 2) }));

const live = await run("live", false, llm.url);
const batched = await run("batch", true, api.url);
await llm.close();
await api.close();

console.log("demo: 300 organisations, prices from gleaner.yaml (0.15 / 0.60 USD per M tokens)");
console.log(
  `${"mode".padEnd(8)} ${"done".padStart(5)} ${"cells".padStart(6)} ${"cost USD".padStart(10)} ${"USD per cell".padStart(13)} ${"rounds".padStart(7)} ${"seconds".padStart(8)}`,
);
for (const r of [live, batched])
  console.log(
    `${r.label.padEnd(8)} ${fmt(r.done).padStart(5)} ${fmt(r.cells).padStart(6)} ${r.cost.toFixed(6).padStart(10)} ${(r.cells > 0 ? r.cost / r.cells : 0).toExponential(3).padStart(13)} ${fmt(r.rounds).padStart(7)} ${fmt(r.seconds, 1).padStart(8)}`,
  );
