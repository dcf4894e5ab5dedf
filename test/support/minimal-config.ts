/**
 * The smallest config `migrate` accepts, for tests of parts that need Gleaner's schema but not a
 * particular pipeline (the pipeline's table is incidental there).
 */
export const MINIMAL_CONFIG_YAML = JSON.stringify({
  llm: { backends: [{ name: "primary", base_url: "http://127.0.0.1:9/v1", model: "fake" }] },
  pipelines: {
    orgs: {
      table: "public.orgs",
      key: "id",
      inputs: ["name"],
      outputs: { city: { type: "text", description: "the city" } },
      stages: [
        { name: "fill", kind: "llm", backends: ["primary"], prompt: "{{name}}", outputs: ["city"] },
      ],
    },
  },
});
