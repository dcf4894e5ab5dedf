import type { GleanerConfig } from "../../src/config/config-types.ts";
import { parseConfig } from "../../src/config/load-config.ts";

/**
 * A one-stage pipeline `items` on public.items (input `name`, output `label`), for the tests of
 * how a pipeline's table is installed and upgraded. `extra` adds pipeline keys, one YAML line
 * each indented by four spaces (e.g. `    on_version_change: reprocess`): what those tests vary;
 * `table` moves the pipeline to another table.
 */
export function itemsPipelineConfig(
  url: string,
  extra = "",
  table = "public.items",
): GleanerConfig {
  return parseConfig(
    `
llm:
  backends:
    - { name: primary, base_url: "http://127.0.0.1:9/v1", model: fake }
pipelines:
  items:
    table: ${table}
    inputs: [name]
    outputs: { label: { type: text, description: "A label" } }
${extra}
    stages:
      - { name: fill, kind: llm, backends: [primary], prompt: "{{name}}", outputs: [label] }
`,
    { env: { DATABASE_URL: url } },
  );
}
