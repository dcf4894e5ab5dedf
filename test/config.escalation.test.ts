import { describe, expect, it } from "vitest";
import { parseConfig } from "../src/config/load-config.ts";

/**
 * pipelines.<p>.escalate as parseConfig reads it: the default ladder a research pipeline gets,
 * `false`, and errors that name the key and say what to do.
 */

type Json = Record<string, unknown>;

const MAIN = { name: "main", base_url: "http://127.0.0.1:9/v1", model: "fake" };
const BIG = { name: "big", base_url: "http://127.0.0.1:9/v1", model: "fake-large" };
const RESEARCH = [
  { name: "plan", kind: "queries" },
  { name: "find", kind: "search", provider: "web" },
  { name: "choose", kind: "select" },
  { name: "fetch", kind: "crawl" },
  { name: "read", kind: "extract", backends: ["main"], outputs: ["founded"] },
];

function parse(pipeline: Json, stages: Json[] = RESEARCH, backends: Json[] = [MAIN, BIG]) {
  return parseConfig(
    JSON.stringify({
      llm: { backends },
      search: { providers: { web: { provider: "serper", api_key: "k-1" } } },
      pipelines: {
        orgs: {
          table: "orgs",
          inputs: ["name", "website"],
          outputs: { founded: { type: "integer", description: "Year founded" } },
          ...pipeline,
          stages,
        },
      },
    }),
    { env: {} },
  );
}

const ladderOf = (pipeline: Json, stages?: Json[]) =>
  parse(pipeline, stages).pipelines[0]?.escalation;

describe("escalate", () => {
  it("gives a research pipeline render, deeper and search_more by default", () => {
    const ladder = ladderOf({});
    expect(ladder?.rungs).toEqual(["render", "deeper", "search_more"]);
    expect(ladder?.maxCalls).toBe(4);
    expect(ladder?.outputs).toEqual(["founded"]);
    expect(ladder?.queryTemplates).toEqual(["{{name}} {{website}} {{column}}"]);
  });

  it("leaves out render when the crawl never renders, and adds stronger_model with its backends", () => {
    const stages = RESEARCH.map((s) => (s.kind === "crawl" ? { ...s, javascript: "never" } : s));
    expect(ladderOf({ escalate: { escalation_backends: ["big"] } }, stages)?.rungs).toEqual([
      "deeper",
      "search_more",
      "stronger_model",
    ]);
  });

  it("is off with escalate: false, and for pipelines without a crawl and extract stage", () => {
    expect(ladderOf({ escalate: false })).toBeUndefined();
    const llmOnly = [
      { name: "guess", kind: "llm", backends: ["main"], prompt: "{{name}}", outputs: ["founded"] },
    ];
    expect(ladderOf({}, llmOnly)).toBeUndefined();
    expect(() => parse({ escalate: { rungs: ["deeper"] } }, llmOnly)).toThrow(
      /pipelines\.orgs\.escalate: .*crawl and an extract stage/,
    );
  });

  it("changes the pipeline version, so rows know which recipe produced them", () => {
    const on = parse({}).pipelines[0]?.version;
    const off = parse({ escalate: false }).pipelines[0]?.version;
    const fewer = parse({ escalate: { rungs: ["deeper"] } }).pipelines[0]?.version;
    expect(new Set([on, off, fewer]).size).toBe(3);
  });

  it("names the key of every mistake", () => {
    expect(() => parse({ escalate: { rungs: ["stronger_model"] } })).toThrow(
      /pipelines\.orgs\.escalate\.escalation_backends: .*name at least one/,
    );
    expect(() => parse({ escalate: { escalation_backends: ["nope"] } })).toThrow(
      /pipelines\.orgs\.escalate\.escalation_backends\[0\]: backend "nope" is not declared/,
    );
    expect(() => parse({ escalate: { rungs: ["deeper", "deeper"] } })).toThrow(
      /pipelines\.orgs\.escalate\.rungs\[1\]: "deeper" is named twice/,
    );
    expect(() => parse({ escalate: { rungs: ["upward"] } })).toThrow(
      /pipelines\.orgs\.escalate\.rungs\[0\]: must be one of render, deeper, search_more, stronger_model/,
    );
    expect(() => parse({ escalate: true })).toThrow(
      /pipelines\.orgs\.escalate: write false to turn the ladder off/,
    );
    expect(() => parse({ escalate: { queries: ["{{nope}} {{column}}"] } })).toThrow(
      /pipelines\.orgs\.escalate\.queries\[0\]: \{\{nope\}\} is neither an input nor \{\{column\}\}/,
    );
    const noSearch = RESEARCH.filter(
      (s) => s.kind !== "queries" && s.kind !== "search" && s.kind !== "select",
    ).map((s) => (s.kind === "crawl" ? { ...s, url_input: "website" } : s));
    expect(() => parse({ escalate: { rungs: ["search_more"] } }, noSearch)).toThrow(
      /pipelines\.orgs\.escalate\.rungs\[0\]: search_more searches again, but the pipeline has no search stage/,
    );
  });
});
