/**
 * What re-running costs: the offline demo (gleaner.yaml, demo/corpus, 300 organisations) with a
 * fake LLM in this process, run once to completion, then
 *
 *   (a) `gleaner reprocess` of all 300 rows (nothing changed),
 *   (b) a user setting one output column (industry) to NULL in every row,
 *   (c) the same as (b) with the LLM answer cache off (llm.cache_ttl: 0s), another process:
 *       what stage reuse alone saves.
 *
 * For each: paid LLM calls (requests the LLM received), LLM cache hits, searches (provider
 * calls, not search-cache hits) and fetches (network or browser, not page-cache hits). The
 * first run is the baseline, measured in the same run. Aims: (a) 0 paid / 0 searches / 0
 * fetches; (b) calls only for the stage filling the column, all answered by the cache.
 *
 *   node --import tsx bench/reprocess-cost.ts
 */
import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { pino } from "pino";
import { Registry } from "prom-client";
import { openGleaner, type Gleaner } from "../src/app/open-gleaner.ts";
import { parseConfig } from "../src/config/load-config.ts";
import { startHttpServer } from "../src/http/start-http-server.ts";
import { servedCorpora } from "../src/search/corpus-folders.ts";
import { reprocessRows } from "../src/sql/reprocess-rows.ts";
import { drain } from "../src/worker/drain.ts";
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

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

// A model that answers like a real one: every field asked, the true value where the demo has
// one (else null), a confidence and the first source the row cites, spaced as models write.
const llm = await startFakeLlm();
llm.handle((req) => {
  const fields = [...req.prompt.matchAll(/^- ([a-z_]+) \(/gm)].map((m) => m[1] as string);
  const rows = rowIdsInPrompt(req.prompt).map((id) => {
    const section = rowSection(req.prompt, id);
    const domain = /^domain: (\S+)$/m.exec(section)?.[1] ?? "";
    const source = /sources: (S\d+)/.exec(section)?.[1];
    const facts = truth[domain] ?? {};
    return {
      id,
      ...Object.fromEntries(
        fields.map((f) => {
          const value = facts[f]?.value ?? null;
          return [
            f,
            {
              value,
              confidence: value === null ? 0 : 0.86,
              sources: value === null || !source ? [] : [source],
            },
          ];
        }),
      ),
    };
  });
  return reply.text(JSON.stringify({ rows }, null, 2));
});

const port = await freePort();
const database = await createBenchDatabase("reprocess");
const logger = pino({ level: "warn" });
const yaml = readFileSync("gleaner.yaml", "utf8").replace(/^(\s+port:) 9464$/m, `$1 ${port}`);
const env = {
  DATABASE_URL: database.url,
  OPENAI_BASE_URL: llm.url,
  OPENAI_MODEL: "fake-bench",
};
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

interface Cost {
  paid: number;
  hits: number;
  searches: number;
  fetches: number;
  seconds: number;
}

/** Runs `step`, drains with `runner`, and counts what it cost. */
async function measure(runner: Gleaner, step: () => Promise<void>): Promise<Cost> {
  const cost: Cost = { paid: 0, hits: 0, searches: 0, fetches: 0, seconds: 0 };
  const { events } = runner.runtime;
  const onCache = (e: { outcome: string }) => {
    if (e.outcome === "hit") cost.hits++;
  };
  const onSearch = (e: { outcome: string }) => {
    if (e.outcome === "call") cost.searches++;
  };
  const onPage = (e: { path: string }) => {
    if (e.path !== "cache") cost.fetches++;
  };
  events.on("llm:cache", onCache);
  events.on("search:lookup", onSearch);
  events.on("crawl:page", onPage);
  const before = llm.requests.length;
  const started = performance.now();
  try {
    await step();
    const result = await drain({
      runtime: runner.runtime,
      url: database.url,
      logger,
      timeoutMs: 900_000,
    });
    if (result.timedOut) throw new Error("drain timed out");
  } finally {
    events.off("llm:cache", onCache);
    events.off("search:lookup", onSearch);
    events.off("crawl:page", onPage);
  }
  cost.seconds = (performance.now() - started) / 1000;
  cost.paid = llm.requests.length - before;
  return cost;
}

const pipeline = app.runtime.pipelines.get("organisations")?.pipeline;
if (!pipeline) throw new Error("gleaner.yaml has no organisations pipeline");
const count = async (where: string) =>
  Number(
    (
      await app.database.pool.query<{ n: string }>(
        `select count(*) as n from organisations where ${where}`,
      )
    ).rows[0]?.n,
  );

const first = await measure(app, async () => {});
const done = await count("enrichment_status = 'done'");
const industries = await count("industry is not null");
let reprocessed = 0;
const again = await measure(app, async () => {
  reprocessed = await reprocessRows(app.database.db, pipeline, {});
});
const nulled = await count("industry is not null");
const cleared = await measure(app, async () => {
  await app.database.pool.query("update organisations set industry = null");
});
// Another process with the answer cache off: stage reuse alone.
const uncached = await openGleaner(
  parseConfig(yaml.replace(/^llm:$/m, "llm:\n  cache_ttl: 0s"), { file: "gleaner.yaml", env }),
  { env, logger, migrate: false },
);
const nulledAgain = await count("industry is not null");
const clearedUncached = await measure(uncached, async () => {
  await app.database.pool.query("update organisations set industry = null");
});
await uncached.close();
const refilled = await count("industry is not null");

const line = (label: string, c: Cost) =>
  `${label.padEnd(58)} ${fmt(c.paid).padStart(5)} ${fmt(c.hits).padStart(10)} ${fmt(c.searches).padStart(9)} ${fmt(c.fetches).padStart(8)} ${fmt(c.seconds, 1).padStart(8)}`;
console.log(
  `demo: 300 organisations, ${done} done after the first run, ${industries} with an industry`,
);
console.log(
  `${"".padEnd(58)} ${"paid".padStart(5)} ${"cache hits".padStart(10)} ${"searches".padStart(9)} ${"fetches".padStart(8)} ${"seconds".padStart(8)}`,
);
console.log(line("first run (baseline)", first));
console.log(line(`(a) reprocess all ${reprocessed} rows (aim 0 / 0 / 0)`, again));
console.log(line(`(b) industry set to NULL in ${nulled} rows (aim 0 paid)`, cleared));
console.log(
  line(`(c) as (b), ${nulledAgain} rows, LLM answer cache off (extract only)`, clearedUncached),
);
console.log(`industry filled again: ${refilled} rows`);

await http.close();
await app.close();
await llm.close();
if (!process.env.BENCH_KEEP) await database.drop();
