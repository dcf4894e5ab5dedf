import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { openGleaner } from "../../src/app/open-gleaner.ts";
import { parseConfig } from "../../src/config/load-config.ts";
import { drain } from "../../src/worker/drain.ts";
import { extractingFakeLlm } from "../../test/support/extracting-fake-llm.ts";
import { startFakeLlm } from "../../test/support/fake-llm-server.ts";
import { EMPLOYEE_LABELS, type HardOrganisation, type PageKind, serveHardWeb } from "./hard-web.ts";

export interface HardWebResult {
  rows: number;
  /** Rows whose true value was written, by page kind. */
  perKind: Map<PageKind, { filled: number; rows: number }>;
  /** Rows left empty. */
  missed: Array<{ name: string; kind: PageKind }>;
  /** Rows given a value that is not theirs. */
  decoys: Array<{ name: string; value: unknown }>;
  /** Pages fetched although robots.txt disallows them. */
  robotsFetches: string[];
  /** Calls to the (paid) LLM. */
  llmCalls: number;
  /** Calls made by escalation rungs, and those of them that asked about a row its stages had
   * already filled (escalation must add calls only for rows with gaps). */
  escalationCalls: number;
  callsForFilledRows: number;
  seconds: number;
}

/**
 * Runs the research pipeline (queries, search, select, crawl, extract) over the hard web for
 * `orgs`, with an extract LLM that reads the pages it is given, and scores what was written.
 * `escalate` is YAML put under the pipeline's `escalate:` key as it is, for measuring with and
 * without escalation.
 */
export async function runHardWeb(options: {
  orgs: HardOrganisation[];
  databaseUrl: string;
  escalate?: string;
  javascript?: "always" | "never" | "auto";
}): Promise<HardWebResult> {
  const web = await serveHardWeb(options.orgs);
  const llm = await startFakeLlm();
  llm.handle(
    extractingFakeLlm({ column: "employees", labels: EMPLOYEE_LABELS, nameInput: "name" }),
  );
  const folder = mkdtempSync(join(tmpdir(), "hard-web-"));
  const seed = join(folder, "organisations.csv");
  writeFileSync(
    seed,
    `name,website\n${options.orgs.map((o) => `${o.name},${web.siteUrl(o)}/`).join("\n")}\n`,
  );
  const logger = pino({ level: process.env.HARD_WEB_LOG ?? "silent" });
  const env = { DATABASE_URL: options.databaseUrl };
  try {
    const config = parseConfig(
      `
llm:
  backends:
    - { name: fake, base_url: ${llm.url}, model: fake, max_concurrency: 8 }
search:
  providers:
    web: { provider: serper, base_url: ${web.searchUrl}, api_key: bench }
crawl:
  allow: ["127.61.0.0/24"]
  javascript: ${options.javascript ?? "auto"}
  timeout: 10s
pipelines:
  hard_web:
    table: public.hard_web
    inputs: [name, website]
    seed: ${seed}
    outputs:
      employees: { type: integer, description: "Number of employees" }
    batch_size: 10
${options.escalate ? `    escalate: ${options.escalate}\n` : ""}    stages:
      - { name: plan, kind: queries, templates: ["{{name}}"] }
      - { name: find, kind: search, provider: web }
      - { name: choose, kind: select, max_urls: 2, domain_input: website }
      - { name: read_pages, kind: crawl, max_depth: 2, strategy: selective, max_pages: 6 }
      - { name: fill, kind: extract, backends: [fake], structured_data: false, outputs: [employees] }
`,
      { file: "hard-web.yaml", env },
    );
    const app = await openGleaner(config, { env, logger, migrate: true });
    try {
      const started = performance.now();
      const drained = await drain({
        runtime: app.runtime,
        url: options.databaseUrl,
        logger,
        timeoutMs: 600_000,
      });
      const seconds = (performance.now() - started) / 1000;
      if (drained.timedOut) throw new Error("the hard web pipeline did not drain in 10 minutes");
      const rows = (
        await app.database.pool.query<{
          name: string;
          employees: number | null;
          rung: string | null;
        }>(
          `select name, employees, enrichment_state -> 'columns' -> 'employees' ->> 'rung' as rung
           from public.hard_web`,
        )
      ).rows;
      const written = new Map(rows.map((r) => [r.name, r.employees]));
      // Rows the pipeline's own stages filled: no rung should have asked about them.
      const filledByStages = rows.filter((r) => r.employees !== null && r.rung === null);
      const rungCalls = llm.requests.filter((r) => {
        const format = r.body?.["response_format"] as
          { json_schema?: { name?: string } } | undefined;
        const name = format?.json_schema?.name;
        return name !== undefined && name !== "fill_answer";
      });
      const callsForFilledRows = rungCalls.filter((r) =>
        filledByStages.some((row) => r.prompt.includes(`name: ${row.name}\n`)),
      ).length;
      const perKind = new Map<PageKind, { filled: number; rows: number }>();
      const decoys: HardWebResult["decoys"] = [];
      const missed: HardWebResult["missed"] = [];
      for (const org of options.orgs) {
        const value = written.get(org.name) ?? null;
        const kind = perKind.get(org.kind) ?? { filled: 0, rows: 0 };
        kind.rows++;
        if (value === org.employees) kind.filled++;
        else if (value !== null) decoys.push({ name: org.name, value });
        else missed.push({ name: org.name, kind: org.kind });
        perKind.set(org.kind, kind);
      }
      return {
        rows: options.orgs.length,
        perKind,
        missed,
        decoys,
        robotsFetches: web.robotsViolations(),
        llmCalls: llm.requests.length,
        escalationCalls: rungCalls.length,
        callsForFilledRows,
        seconds,
      };
    } finally {
      await app.close();
    }
  } finally {
    await llm.close();
    await web.close();
    rmSync(folder, { recursive: true, force: true });
  }
}
