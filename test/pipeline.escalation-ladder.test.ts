import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { mkdtempSync, writeFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { RowState } from "../src/pipeline/row-state.ts";
import { CHROMIUM_PATH, chromiumAvailable } from "./support/chromium.ts";
import {
  reply,
  rowIdsInPrompt,
  rowSection,
  startFakeLlm,
  type FakeLlm,
} from "./support/fake-llm-server.ts";
import { makeDue, startHarness, type Harness } from "./support/gleaner-harness.ts";
import { spawnGleaner, waitFor } from "./support/gleaner-process.ts";

/**
 * The escalation ladder end to end on real PostgreSQL, a real Chromium and loopback servers: a
 * company site that hides one fact in a script, one behind a link without a follow word, one only
 * in a registry that a query about the column finds, and one the cheap model is unsure of. Each
 * rung fills exactly the gap it is built for; rows without gaps never climb.
 */

const ACME_HOME = `<!doctype html><html><head><title>Acme Rocketry</title></head><body>
<h1>Acme Rocketry</h1>
<p>Acme Rocketry builds small launch vehicles for research payloads. Our engineers design,
test and fly rockets from our own range. We have worked with universities and agencies for
many years, and we answer every enquiry within a day. Acme Rocketry — CEO: Jane Doe.</p>
<p>Headcount: <span id="headcount"></span></p>
<script>document.getElementById("headcount").textContent = "Acme Rocketry — employees: 412";</script>
<p><a href="/acme/story">Our story</a></p>
</body></html>`;

const ACME_STORY = `<!doctype html><html><head><title>Our story — Acme Rocketry</title></head><body>
<h1>Our story</h1><p>It began in a garage. Acme Rocketry — founded: 1999.</p></body></html>`;

const REGISTRY = `<!doctype html><html><head><title>Company register: Acme Rocketry</title></head>
<body><h1>Acme Rocketry</h1><p>Filed accounts. Acme Rocketry — revenue: 5400000.</p></body></html>`;

const BOLT_HOME = `<!doctype html><html><head><title>Bolt Motors</title></head><body>
<h1>Bolt Motors</h1><p>Bolt Motors makes electric motors. Bolt Motors — employees: 90.
Bolt Motors — founded: 2004. Bolt Motors — revenue: 1200000. Bolt Motors — CEO: Ann Lee.</p>
</body></html>`;

interface Site {
  url: string;
  close(): Promise<void>;
}

async function listen(handler: (req: IncomingMessage, res: ServerResponse) => void) {
  const server: Server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function startSite(): Promise<Site> {
  const pages: Record<string, string> = {
    "/acme/": ACME_HOME,
    "/acme/story": ACME_STORY,
    "/registry/acme": REGISTRY,
    "/bolt/": BOLT_HOME,
  };
  return listen((req, res) => {
    const page = pages[req.url ?? ""];
    res.writeHead(page ? 200 : 404, { "content-type": "text/html; charset=utf-8" });
    res.end(page ?? "not found");
  });
}

/** A Serper-shaped search API: a company's name finds its home page; a query about revenue
 * finds the register's page as well. */
async function startSearch(site: Site, queries: string[]) {
  return listen((req, res) => {
    let raw = "";
    req.on("data", (c: Buffer) => (raw += c.toString()));
    req.on("end", () => {
      const q = String((JSON.parse(raw) as { q?: string }).q ?? "");
      queries.push(q);
      const organic = [];
      if (/revenue/i.test(q) && /acme/i.test(q))
        organic.push({
          title: "Company register: Acme Rocketry",
          link: `${site.url}/registry/acme`,
          snippet: "",
        });
      if (/acme/i.test(q))
        organic.push({ title: "Acme Rocketry", link: `${site.url}/acme/`, snippet: "" });
      if (/bolt/i.test(q))
        organic.push({ title: "Bolt Motors", link: `${site.url}/bolt/`, snippet: "" });
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ organic }));
    });
  });
}

const LABELS: Record<string, string> = {
  employees: "employees",
  founded: "founded",
  revenue: "revenue",
  ceo: "CEO",
};

/**
 * An extraction model that reads the sources it is given: "<name> — <label>: <value>" in a
 * source the row cites. The `fake` model is unsure of the CEO (0.4); the `strong` one is not.
 */
function extractingHandler(llm: FakeLlm, failSchema: { name?: string; hang?: string }) {
  llm.handle((req) => {
    const format = req.responseFormat as { json_schema?: { name?: string } } | undefined;
    if (failSchema.name && format?.json_schema?.name === failSchema.name) return reply.status(500);
    if (failSchema.hang && format?.json_schema?.name === failSchema.hang) return reply.hang();
    const sources = new Map<string, string>();
    const part = req.prompt.split("\n## Sources\n")[1]?.split("\n## Items\n")[0] ?? "";
    for (const chunk of part.split(/\n(?=\[S\d+\] )/)) {
      const id = /^\s*\[(S\d+)\]/.exec(chunk)?.[1];
      if (id) sources.set(id, chunk);
    }
    const wanted = Object.keys(LABELS).filter((c) => req.prompt.includes(`- ${c} (`));
    const rows = rowIdsInPrompt(req.prompt).map((id) => {
      const section = rowSection(req.prompt, id);
      const name = /^name: (.*)$/m.exec(section)?.[1]?.trim() ?? "";
      const cited = (/^sources: (.*)$/m.exec(section)?.[1] ?? "").split(/,\s*/);
      const answer: Record<string, unknown> = { id };
      for (const column of wanted) {
        answer[column] = { value: null, confidence: 0, sources: [] };
        const pattern = new RegExp(`${name} — ${LABELS[column]}: ([^.<\\n]+)`);
        for (const source of cited) {
          const found = pattern.exec(sources.get(source) ?? "");
          if (!found?.[1]) continue;
          const text = found[1].trim();
          const value = column === "ceo" ? text : Number(text);
          const sure = column !== "ceo" || req.model === "strong" || name.startsWith("Bolt");
          answer[column] = { value, confidence: sure ? 0.9 : 0.4, sources: [source] };
          break;
        }
      }
      return answer;
    });
    return reply.json({ rows }, { usage: { prompt_tokens: 1000, completion_tokens: 100 } });
  });
}

interface Row {
  name: string;
  employees: number | null;
  founded: number | null;
  revenue: string | null;
  ceo: string | null;
  enrichment_status: string;
  enrichment_next_at: Date | null;
  enrichment_state: RowState;
}

const schemaName = (body: Record<string, unknown> | undefined) =>
  (body?.["response_format"] as { json_schema?: { name?: string } } | undefined)?.json_schema?.name;

describe.skipIf(!chromiumAvailable())("escalation ladder", () => {
  let site: Site;
  let search: Site;
  let llm: FakeLlm;
  let h: Harness | undefined;
  const queries: string[] = [];
  const failing: { name?: string; hang?: string } = {};

  beforeAll(async () => {
    site = await startSite();
    search = await startSearch(site, queries);
    llm = await startFakeLlm();
    extractingHandler(llm, failing);
  });
  afterEach(async () => {
    await h?.close();
    h = undefined;
    llm.requests.length = 0;
    queries.length = 0;
    delete failing.name;
    delete failing.hang;
  });
  afterAll(async () => {
    await Promise.all([site.close(), search.close(), llm.close()]);
  });

  const yaml = ({
    lease = "5m",
    ladder = "{ rungs: [render, deeper, search_more, stronger_model], escalation_backends: [strong] }",
    budget = "",
  } = {}) => `
llm:
  backends:
    - { name: main, base_url: ${llm.url}, model: fake, timeout: 10s, price: { input_per_million: 1, output_per_million: 2 } }
    - { name: strong, base_url: ${llm.url}, model: strong, timeout: 10s, price: { input_per_million: 10, output_per_million: 20 } }
search:
  providers:
    web: { provider: serper, base_url: ${search.url}, api_key: test-key, timeout: 5s }
crawl:
  allow: [127.0.0.1]
  per_host_delay: 0ms
  javascript: never
  browser: { executable_path: ${CHROMIUM_PATH}, contexts: 1 }
pipelines:
  orgs:
    table: public.orgs
    inputs: [name]
    outputs:
      employees: { type: integer, description: "Number of employees" }
      founded: { type: integer, description: "Year founded" }
      revenue: { type: numeric, description: "Annual revenue" }
      ceo: { type: text, description: "Chief executive" }
    min_confidence: 0.7
    lease: ${lease}
    retry: { max_attempts: 3, delays: [1m] }
    escalate: ${ladder}
${budget}
    stages:
      - { name: plan, kind: queries, templates: ["{{name}}"], search_context: "" }
      - { name: find, kind: search, provider: web }
      - { name: choose, kind: select, max_urls: 1 }
      - { name: fetch, kind: crawl, max_depth: 0 }
      - { name: read, kind: extract, backends: [main], outputs: [employees, founded, revenue, ceo] }
`;
  const acmeAndBolt = {
    beforeMigrate: `create table public.orgs (id serial primary key, name text not null,
      employees integer, founded integer, revenue numeric, ceo text);
      insert into public.orgs (name) values ('Acme Rocketry'), ('Bolt Motors');`,
  };
  const start = (label: string, lease?: string) =>
    startHarness(label, yaml({ lease }), {
      ...acmeAndBolt,
    });

  const rows = async () =>
    (await (h as Harness).query<Row>(`select * from public.orgs order by id`)) as [Row, Row];

  it("climbs every rung for the row with gaps, each filling its own gap; the full row never climbs", async () => {
    h = await start("ladder_all_rungs");
    await h.sweep();
    await h.drain(60_000);
    const [acme, bolt] = await rows();

    expect([acme.employees, acme.founded, Number(acme.revenue), acme.ceo]).toEqual([
      412,
      1999,
      5400000,
      "Jane Doe",
    ]);
    const columns = acme.enrichment_state.columns ?? {};
    expect(columns["employees"]?.rung).toBe("render");
    expect(columns["founded"]?.rung).toBe("deeper");
    expect(columns["revenue"]?.rung).toBe("search_more");
    expect(columns["ceo"]?.rung).toBe("stronger_model");
    expect(columns["ceo"]?.model).toBe("strong");
    expect(columns["ceo"]?.rung_cost_usd).toBeGreaterThan(0);
    for (const rung of ["render", "deeper", "search_more", "stronger_model"])
      expect(acme.enrichment_state.stages?.[`rung:${rung}`]?.status).toBe("ok");
    // Every gap filled: settled, and nothing left to re-check.
    expect(acme.enrichment_status).toBe("done");
    expect(acme.enrichment_next_at).toBeNull();
    expect(queries.some((q) => /acme rocketry revenue/i.test(q))).toBe(true);

    // The row without gaps: its values from the stages, no rung record, no call about it
    // after the first extraction.
    expect([bolt.employees, bolt.founded, Number(bolt.revenue), bolt.ceo]).toEqual([
      90,
      2004,
      1200000,
      "Ann Lee",
    ]);
    expect(
      Object.keys(bolt.enrichment_state.stages ?? {}).filter((s) => s.startsWith("rung:")),
    ).toEqual([]);
    const rungCalls = llm.requests.filter((r) => {
      const name = schemaName(r.body);
      return name !== undefined && name !== "read_answer" && name.startsWith("read_");
    });
    expect(rungCalls.length).toBeGreaterThanOrEqual(4);
    expect(rungCalls.every((r) => !r.prompt.includes("Bolt Motors"))).toBe(true);
  });

  it("a rung that fails leaves the row's values, and the re-check resumes at that rung", async () => {
    failing.name = "read_deeper_answer";
    h = await start("ladder_resume");
    await h.sweep();
    await h.drain(60_000);
    let [acme] = await rows();
    // Render found the employees; deeper failed, so the ladder did not settle: a re-check is due.
    expect(acme.employees).toBe(412);
    expect(acme.founded).toBeNull();
    expect(acme.enrichment_state.stages?.["rung:deeper"]?.status).toBe("error");
    expect(acme.enrichment_status).toBe("done");
    expect(acme.enrichment_next_at).not.toBeNull();

    delete failing.name;
    llm.requests.length = 0;
    await makeDue(h, "public.orgs");
    await h.sweep();
    await h.drain(60_000);
    [acme] = await rows();
    expect(acme.founded).toBe(1999);
    expect(acme.enrichment_state.columns?.["founded"]?.rung).toBe("deeper");
    // Nothing before the failed rung was asked again: not the stage, not the render rung.
    const asked = llm.requests.map((r) => schemaName(r.body)).filter(Boolean);
    expect(asked).not.toContain("read_answer");
    expect(asked).not.toContain("read_render_answer");
    expect(asked).toContain("read_deeper_answer");
    expect(acme.enrichment_next_at).toBeNull();
  });

  it("a worker killed mid-rung: the next one resumes at that rung, paying nothing again before it", async () => {
    h = await start("ladder_kill", "2s");
    const file = join(mkdtempSync(join(tmpdir(), "gleaner-ladder-")), "gleaner.yaml");
    writeFileSync(file, yaml({ lease: "2s" }));
    failing.hang = "read_deeper_answer";
    await h.sweep();
    const child = spawnGleaner(["worker", "--config", file], {
      env: { DATABASE_URL: h.testDb.url, GLEANER_LOG_LEVEL: "warn" },
    });
    try {
      await waitFor(
        "the worker to reach the deeper rung",
        () => llm.requests.some((r) => schemaName(r.body) === "read_deeper_answer"),
        150_000,
      );
      // The render rung's results were checkpointed before the deeper rung started.
      const [before] = await rows();
      expect(before.enrichment_state.stages?.["rung:render"]?.status).toBe("ok");
      expect(before.enrichment_state.stages?.["rung:deeper"]).toBeUndefined();
      await child.kill();
    } finally {
      await child.kill();
    }
    delete failing.hang;
    llm.requests.length = 0;
    await h.drain(60_000);
    const [acme] = await rows();
    expect(acme.founded).toBe(1999);
    expect(acme.employees).toBe(412);
    const asked = llm.requests.map((r) => schemaName(r.body)).filter(Boolean);
    expect(asked).not.toContain("read_answer");
    expect(asked).not.toContain("read_render_answer");
    expect(asked).toContain("read_deeper_answer");
  }, 240_000);

  it("stops at max_escalation_calls and settles the row at its best, not re-checked", async () => {
    h = await startHarness(
      "ladder_capped",
      yaml({ ladder: "{ rungs: [render, deeper, search_more], max_escalation_calls: 1 }" }),
      acmeAndBolt,
    );
    await h.sweep();
    await h.drain(60_000);
    const [acme] = await rows();
    expect(acme?.employees).toBe(412);
    expect(acme?.founded).toBeNull();
    expect(acme?.enrichment_state.stages?.["rung:deeper"]?.status).toBe("skipped");
    expect(acme?.enrichment_state.stages?.["rung:deeper"]?.reason).toMatch(/max_escalation_calls/);
    expect(acme?.enrichment_state.columns?.["founded"]?.reason).toMatch(
      /LLM answered null\); render: /,
    );
    expect(acme?.enrichment_status).toBe("done");
    expect(acme?.enrichment_next_at).toBeNull();
  });

  it("stops at the row's per_row_usd: nothing is climbed once the row spent its budget", async () => {
    // The extraction call costs $0.0012 (1,000 tokens in at $1/M, 100 out at $2/M), split
    // between the two rows it asked about: each spent $0.0006 before the ladder.
    h = await startHarness(
      "ladder_budget",
      yaml({
        ladder: "{ rungs: [render, deeper] }",
        budget: "    budget: { per_row_usd: 0.0005 }",
      }),
      acmeAndBolt,
    );
    await h.sweep();
    await h.drain(60_000);
    const [acme] = await rows();
    expect(acme?.enrichment_state.stages?.["read"]?.status).toBe("ok");
    for (const rung of ["render", "deeper"]) {
      expect(acme?.enrichment_state.stages?.[`rung:${rung}`]?.status).toBe("skipped");
      expect(acme?.enrichment_state.stages?.[`rung:${rung}`]?.reason).toMatch(/per_row_usd/);
    }
    expect(acme?.employees).toBeNull();
    expect(acme?.enrichment_status).toBe("done");
    expect(acme?.enrichment_next_at).toBeNull();
    expect(
      llm.requests.filter(
        (r) => schemaName(r.body)?.startsWith("read_") && schemaName(r.body) !== "read_answer",
      ),
    ).toEqual([]);
  });
});
