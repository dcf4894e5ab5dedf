import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sameOutputValue } from "../src/core/output-types.ts";
import { agree, AGREEMENT_CEILING } from "../src/pipeline/agreement.ts";
import type { RowState } from "../src/pipeline/row-state.ts";
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
 * Several sources stating a value: agreement raises its confidence, disagreement lowers it and
 * keeps the other values with their sources as `conflicts`. Between the pages of one crawl
 * (structured data, read at no LLM cost), and between stages that fill the same output.
 */

function organization(name: string, employees: number, link = ""): string {
  return htmlPage(
    name,
    `<p>${name}</p>${link ? `<a href="${link}">team</a>` : ""}`,
    `<script type="application/ld+json">${JSON.stringify({
      "@context": "https://schema.org",
      "@type": "Organization",
      name,
      numberOfEmployees: employees,
    })}</script>`,
  );
}

let site: PageMapSite;
let llm: FakeLlm;
let h: Harness;

beforeAll(async () => {
  site = await startPageMapSite({
    "/agree-a": organization("Agree Co", 42, "/agree-b"),
    "/agree-b": organization("Agree Co", 42),
    "/differ-a": organization("Differ Co", 42, "/differ-b"),
    "/differ-b": organization("Differ Co", 50),
    "/solo": organization("Solo Co", 42),
  });
  llm = await startFakeLlm();
  h = await startHarness(
    "agreement",
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
  pages:
    table: public.pages
    inputs: [name, website]
    outputs:
      employees: { type: integer, description: "Number of employees" }
    retry: { max_attempts: 1, delays: [1m] }
    # Agreement between what the stages read; the ladder would read more pages for a low value.
    escalate: false
    stages:
      - { name: fetch, kind: crawl, url_input: website, max_depth: 1, strategy: breadth_first }
      - { name: read, kind: extract, outputs: [employees] }
  stages:
    table: public.stages
    inputs: [name, website]
    outputs:
      employees: { type: integer, description: "Number of employees" }
    retry: { max_attempts: 1, delays: [1m] }
    # Agreement between what the stages read; the ladder would read more pages for a low value.
    escalate: false
    stages:
      - { name: guess, kind: llm, backends: [fake], prompt: "Company: {{name}}", outputs: [employees] }
      - { name: fetch, kind: crawl, url_input: website, max_depth: 0 }
      - { name: read, kind: extract, outputs: [employees] }
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
  enrichment_confidence: number | null;
  enrichment_state: RowState;
}

async function rows(table: string): Promise<Map<string, Row>> {
  const found = await h.query<Row>(
    `select name, employees, enrichment_confidence::float8 as enrichment_confidence, enrichment_state from ${table}`,
  );
  return new Map(found.map((r) => [r.name, r]));
}

describe("agreement between pages", () => {
  it("raises the confidence of a value two pages state, lowers it and keeps the conflict when they differ", async () => {
    await h.query(`insert into pages (name, website) values ($1, $2), ($3, $4), ($5, $6)`, [
      "Agree Co",
      site.url("/agree-a"),
      "Differ Co",
      site.url("/differ-a"),
      "Solo Co",
      site.url("/solo"),
    ]);
    await h.drain();
    const got = await rows("pages");

    // One page: schema.org's direct confidence, as before.
    const solo = got.get("Solo Co")?.enrichment_state.columns?.["employees"];
    expect(solo?.confidence).toBe(0.95);
    expect(solo?.conflicts).toBeUndefined();

    // Two pages agree: 1 − 0.05 · (1 − 0.95/2).
    const agreed = got.get("Agree Co")?.enrichment_state.columns?.["employees"];
    expect(agreed).toMatchObject({ value: 42, confidence: 0.974 });
    expect(agreed?.sources).toEqual([site.url("/agree-a"), site.url("/agree-b")]);
    expect(agreed?.conflicts).toBeUndefined();
    expect(got.get("Agree Co")?.enrichment_confidence).toBeCloseTo(0.974, 5);

    // Two pages differ, equally sure: the first page read wins, at about half its confidence.
    const differ = got.get("Differ Co")?.enrichment_state.columns?.["employees"];
    expect(differ).toMatchObject({ value: 42, confidence: 0.499 });
    expect(differ?.conflicts).toEqual([
      { value: 50, confidence: 0.95, sources: [site.url("/differ-b")] },
    ]);
  });
});

describe("agreement between stages", () => {
  it("combines an LLM stage's answer with the page's: same value up, another value down", async () => {
    llm.handle((req) =>
      reply.json({
        rows: rowIdsInPrompt(req.prompt).map((id) => ({
          id,
          employees: {
            value: rowSection(req.prompt, id).includes("Agree Co") ? 42 : 99,
            confidence: 0.8,
          },
        })),
      }),
    );
    await h.query(`insert into stages (name, website) values ($1, $2), ($3, $4)`, [
      "Agree Co",
      site.url("/agree-b"),
      "Differ Co",
      site.url("/differ-a"),
    ]);
    await h.drain();
    const got = await rows("stages");

    // 1 − (1 − 0.95) · (1 − 0.8/2); the page's answer carries the provenance.
    const agreed = got.get("Agree Co")?.enrichment_state.columns?.["employees"];
    expect(agreed).toMatchObject({ value: 42, confidence: 0.97, stage: "read", origin: "json-ld" });
    expect(agreed?.conflicts).toBeUndefined();

    // 0.95 · (1 − 0.8/2); the model's other value is kept.
    const differ = got.get("Differ Co")?.enrichment_state.columns?.["employees"];
    expect(differ).toMatchObject({ value: 42, confidence: 0.57, stage: "read" });
    expect(differ?.conflicts).toEqual([{ value: 99, confidence: 0.8, sources: [] }]);
    expect(got.get("Differ Co")?.employees).toBe(42);
  });
});

describe("agree", () => {
  it("groups by the output type's equality and bounds the raise", () => {
    const three = agree("text", [
      { value: "Acme  Corp", confidence: 0.9, sources: ["a"] },
      { value: "acme corp", confidence: 0.9, sources: ["b"] },
      { value: "ACME CORP", confidence: 0.9, sources: ["c"] },
    ]);
    // 1 − 0.1 · 0.55 · 0.55: each further source counts half.
    expect(three?.confidence).toBe(0.97);
    const sure = agree("boolean", [
      { value: true, confidence: 0.99, sources: ["a"] },
      { value: true, confidence: 0.99, sources: ["b"] },
    ]);
    expect(sure?.confidence).toBe(AGREEMENT_CEILING);
    expect(three?.sources).toEqual(["a", "b", "c"]);
  });
  it("counts a source once, and lets several weaker sources outvote one stronger", () => {
    const same = agree("integer", [
      { value: 7, confidence: 0.6, sources: ["a"] },
      { value: 7, confidence: 0.6, sources: ["a"] },
    ]);
    expect(same?.confidence).toBe(0.6);
    const outvoted = agree("integer", [
      { value: 1, confidence: 0.7, sources: ["a"] },
      { value: 2, confidence: 0.6, sources: ["b"] },
      { value: 2, confidence: 0.6, sources: ["c"] },
    ]);
    // support(2) = 1 − 0.4 · 0.7 = 0.72 beats 0.7; then · (1 − 0.7/2).
    expect(outvoted).toMatchObject({ value: 2, confidence: 0.468 });
    expect(outvoted?.conflicts).toEqual([{ value: 1, confidence: 0.7, sources: ["a"] }]);
    expect(agree("integer", [{ value: null, confidence: 0 }])).toBeUndefined();
  });
  it("compares numbers within tolerance, lists as sets, documents by content", () => {
    expect(sameOutputValue("numeric", 12.3, 12.31)).toBe(true);
    expect(sameOutputValue("numeric", 12.3, 12.5)).toBe(false);
    expect(sameOutputValue("integer", 1998, 1999)).toBe(false);
    expect(sameOutputValue("text[]", ["A", "b "], ["B", "a"])).toBe(true);
    expect(sameOutputValue("jsonb", '{"a":1,"b":2}', { b: 2, a: 1 })).toBe(true);
    expect(
      sameOutputValue("timestamptz", "2024-05-01T12:00:00Z", "2024-05-01T14:00:00+02:00"),
    ).toBe(true);
  });
});
