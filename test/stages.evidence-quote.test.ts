import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { contentHash } from "../src/core/content-hash.ts";
import type { RowState } from "../src/pipeline/row-state.ts";
import { findQuote, QUOTE_MAX_CHARS } from "../src/stages/value-evidence.ts";
import { htmlPage } from "./support/fixture-site.ts";
import {
  reply,
  rowIdsInPrompt,
  rowSection,
  startFakeLlm,
  type FakeLlm,
} from "./support/fake-llm-server.ts";
import { startHarness, type Harness } from "./support/gleaner-harness.ts";
import { startPageMapSite, type PageMapSite } from "./support/page-map-site.ts";

/**
 * Every value keeps the passage that states it, the page's fetch time and the hash of the text
 * read, so a reviewer sees why without opening the page: found in the text the model was given
 * (no quote asked of the model), and for structured data the property it was read from.
 */

const LONG_FILLER = "It also makes engines, valves, pumps and a great many other parts ".repeat(8);

let site: PageMapSite;
let llm: FakeLlm;
let h: Harness;

beforeAll(async () => {
  site = await startPageMapSite({
    "/acme": htmlPage(
      "Acme Rocketry",
      `<p>Acme Rocketry was founded in 1998 in Ohio.</p>
       <p>Today Acme Rocketry has 1,412 employees across three plants. Its chief executive is Jane Q. Doe.</p>
       <p>${LONG_FILLER} and its head count of 2,024 people is published here ${LONG_FILLER}</p>`,
    ),
    "/beta": htmlPage(
      "Beta Works",
      `<p>Beta Works is led by its founder.</p>`,
      `<script type="application/ld+json">${JSON.stringify({
        "@context": "https://schema.org",
        "@type": "Organization",
        name: "Beta Works",
        numberOfEmployees: 42,
      })}</script>`,
    ),
  });
  llm = await startFakeLlm();
  h = await startHarness(
    "evidence_quote",
    `
crawl:
  allow: [127.0.0.1]
  per_host_delay: 0ms
  per_host_concurrency: 4
  javascript: never
  timeout: 15s
llm:
  backends:
    - { name: fake, base_url: ${llm.url}, model: fake, timeout: 10s }
pipelines:
  firms:
    table: public.firms
    inputs: [name, website]
    outputs:
      employees: { type: integer, description: "Number of employees" }
      ceo: { type: text, description: "Chief executive officer" }
    retry: { max_attempts: 1, delays: [1m] }
    stages:
      - { name: fetch, kind: crawl, url_input: website, max_depth: 0 }
      - { name: read, kind: extract, backends: [fake], outputs: [employees, ceo] }
`,
  );
});

afterAll(async () => {
  await h?.close();
  await Promise.all([llm?.close(), site?.close()]);
});

interface Row {
  name: string;
  employees: number | null;
  ceo: string | null;
  enrichment_state: RowState;
}

describe("value evidence", () => {
  it("keeps the quote, fetch time and content hash of each value", async () => {
    llm.handle((req) =>
      reply.json({
        rows: rowIdsInPrompt(req.prompt).map((id) => {
          const section = rowSection(req.prompt, id);
          const source = /sources: (S\d+)/.exec(section)?.[1] ?? "S1";
          if (section.includes("name: Acme Rocketry"))
            return {
              id,
              employees: { value: 1412, confidence: 0.9, sources: [source] },
              // Another case and spacing than the page's: still found.
              ceo: { value: "jane  q. doe", confidence: 0.9, sources: [source] },
            };
          if (section.includes("name: Acme Two"))
            return {
              id,
              // Stated deep inside a long sentence: the quote is cut around it.
              employees: { value: 2024, confidence: 0.8, sources: [source] },
              // A paraphrase: no passage states it, but the page was still read.
              ceo: { value: "Dr. J. Doe", confidence: 0.7, sources: [source] },
            };
          return { id, ceo: { value: null, confidence: 0, sources: [] } };
        }),
      }),
    );
    await h.query(`insert into firms (name, website) values ($1, $2), ($3, $4), ($5, $6)`, [
      "Acme Rocketry",
      site.url("/acme"),
      "Acme Two",
      site.url("/acme"),
      "Beta Works",
      site.url("/beta"),
    ]);
    await h.drain();

    const rows = await h.query<Row>(
      `select name, employees, ceo, enrichment_state from firms order by name`,
    );
    const byName = new Map(rows.map((r) => [r.name, r]));
    const pages = await h.query<{ url: string; markdown: string; fetched_at: Date }>(
      `select url, markdown, fetched_at from gleaner.page_cache`,
    );
    const page = (path: string) => pages.find((p) => p.url === site.url(path));
    const acmePage = page("/acme");
    expect(acmePage).toBeDefined();

    const acme = byName.get("Acme Rocketry")?.enrichment_state.columns ?? {};
    expect(acme["employees"]).toMatchObject({
      value: 1412,
      quote: "Today Acme Rocketry has 1,412 employees across three plants.",
      fetched_at: acmePage?.fetched_at.toISOString(),
      content_hash: contentHash(acmePage?.markdown),
    });
    expect(acme["ceo"]?.quote).toBe("Its chief executive is Jane Q. Doe.");

    const two = byName.get("Acme Two")?.enrichment_state.columns ?? {};
    const cut = two["employees"]?.quote ?? "";
    expect(cut).toContain("2,024");
    expect(cut.length).toBeLessThanOrEqual(QUOTE_MAX_CHARS + 2);
    expect(cut.startsWith("…") && cut.endsWith("…")).toBe(true);
    expect(two["ceo"]?.quote).toBeUndefined();
    expect(two["ceo"]?.fetched_at).toBe(acmePage?.fetched_at.toISOString());

    // Structured data: the property it was read from, at no LLM cost.
    const beta = byName.get("Beta Works")?.enrichment_state.columns ?? {};
    const betaPage = page("/beta");
    expect(beta["employees"]).toMatchObject({
      value: 42,
      origin: "json-ld",
      quote: "json-ld Organization numberOfEmployees: 42",
      fetched_at: betaPage?.fetched_at.toISOString(),
      content_hash: contentHash(betaPage?.markdown),
    });
  });
});

describe("findQuote", () => {
  const passages = [
    { url: "u1", text: "Revenue grew. The firm employs 41200 people in 2023.\nBoard: A. Smith" },
    { url: "u2", text: "Headcount: 412 staff. Founded 2001-03-04." },
  ];
  it("never finds a number inside a longer one, and tries the passages in order", () => {
    expect(findQuote("integer", 412, passages)).toEqual({
      quote: "Headcount: 412 staff.",
      url: "u2",
    });
    expect(findQuote("integer", 41200, passages)?.quote).toBe(
      "The firm employs 41200 people in 2023.",
    );
  });
  it("stops a quote at a line break, finds dates and lists, quotes nothing it cannot find", () => {
    expect(findQuote("text", "a. smith", passages)?.quote).toBe("Board: A. Smith");
    expect(findQuote("date", "2001-03-04", passages)?.url).toBe("u2");
    expect(findQuote("text[]", ["nobody", "A. Smith"], passages)?.url).toBe("u1");
    expect(findQuote("text", "Smithers", passages)).toBeUndefined();
    expect(findQuote("boolean", true, passages)).toBeUndefined();
  });
});
