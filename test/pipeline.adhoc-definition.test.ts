import { describe, expect, it } from "vitest";
import { parseConfig, resolvePipelineDefinition } from "../src/config/load-config.ts";
import { adhocDefinition } from "../src/pipeline/adhoc-pipelines.ts";

/** What an API ad-hoc request becomes, validated exactly like a pipeline in gleaner.yaml. */

const BASE = `
llm:
  backends:
    - { name: main, base_url: "http://127.0.0.1:9/v1", model: fake }
pipelines:
  unused:
    table: unused
    inputs: [name]
    outputs: { x: { type: text, description: "x" } }
    stages: [{ name: s, kind: llm, backends: [main], prompt: "{{name}}", outputs: [x] }]
`;
const REQUEST = {
  inputs: ["name", "domain"],
  outputs: {
    founded: { type: "integer", description: "Year founded" },
    industry: { type: "text", description: "Industry" },
  },
  search_context: "company profile {{not a field}}",
};

describe("adhocDefinition", () => {
  it("is one LLM stage when no search provider is configured", () => {
    const config = parseConfig(BASE, { env: {} });
    const definition = adhocDefinition(REQUEST, "adhoc_0001", config);
    const p = resolvePipelineDefinition("adhoc_0001", definition, config.backends, config);
    expect(p.stages.map((s) => s.kind)).toEqual(["llm"]);
    expect(p.stages[0]?.kind === "llm" && p.stages[0].prompt).toContain(
      "Context: company profile { {not a field} }",
    );
  });

  it("researches the web with the first search provider when one is configured", () => {
    const config = parseConfig(
      `${BASE}
search:
  providers:
    web: { provider: searxng, base_url: "http://127.0.0.1:9/searxng" }
`,
      { env: {} },
    );
    const definition = adhocDefinition(REQUEST, "adhoc_0002", config);
    const p = resolvePipelineDefinition("adhoc_0002", definition, config.backends, config);
    expect(p.stages.map((s) => s.kind)).toEqual([
      "queries",
      "search",
      "select",
      "crawl",
      "extract",
    ]);
    const [queries, search, , , extract] = p.stages;
    expect(queries?.kind === "queries" && queries.templates).toEqual([
      "{{name}} {{domain}} {{search_context}}",
    ]);
    expect(queries?.kind === "queries" && queries.searchContext).toBe(
      "company profile {{not a field}}",
    );
    expect(search?.kind === "search" && search.provider).toBe("web");
    expect(extract?.kind === "extract" && extract.backends).toEqual(["main"]);
    expect(extract?.outputs).toEqual(["founded", "industry"]);
  });
});
