import { randomBytes } from "node:crypto";
import { sql } from "kysely";
import type { GleanerConfig, PipelineConfig } from "../config/config-types.ts";
import { resolvePipelineDefinition } from "../config/load-config.ts";
import type { Db } from "../db/connect-database.ts";
import { installPipelineTable } from "../db/install-pipeline-table.ts";

/** Ad-hoc pipelines' tables live in a schema of their own, away from the user's tables. */
export const ADHOC_SCHEMA = "gleaner_adhoc";

/** What a client sends instead of a pipeline name. */
export interface AdhocRequest {
  inputs: string[];
  outputs: Record<string, { type: string; description: string }>;
  /** Background the model should know (who is asking, what the rows are about). */
  search_context?: string;
}

/**
 * The pipeline an ad-hoc request stands for: a table of its own with the request's inputs and
 * outputs. With a search provider configured, it researches each row on the web (queries from
 * the inputs and the search context → the first provider → select → crawl → extract, structured
 * data first, then every configured backend in order); without one, one LLM stage answers. It is
 * validated by the same schema and cross-checks as a pipeline in gleaner.yaml.
 */
export function adhocDefinition(
  request: AdhocRequest,
  name: string,
  config: GleanerConfig,
): Record<string, unknown> {
  // User text must not be read as template fields: `{{` in a context is just text.
  const literal = (text: string) => text.replace(/\{\{/g, "{ {").replace(/\}\}/g, "} }");
  const inputs = Array.isArray(request.inputs) ? request.inputs : [];
  const lines = [
    ...(typeof request.search_context === "string" && request.search_context.trim() !== ""
      ? [`Context: ${literal(request.search_context.trim())}`]
      : []),
    ...inputs.map((i) => `${String(i)}: {{${String(i)}}}`),
  ];
  const outputs = Object.keys(request.outputs ?? {});
  const provider = config.search.providers[0];
  if (provider) {
    const context = typeof request.search_context === "string" ? request.search_context.trim() : "";
    return {
      table: `${ADHOC_SCHEMA}.${name}`,
      inputs,
      outputs: request.outputs,
      stages: [
        {
          name: "plan",
          kind: "queries",
          templates: [inputs.map((i) => `{{${String(i)}}}`).join(" ") + " {{search_context}}"],
          search_context: context,
        },
        { name: "find", kind: "search", provider: provider.name },
        { name: "choose", kind: "select" },
        { name: "read_pages", kind: "crawl" },
        {
          name: "extract",
          kind: "extract",
          backends: config.backends.map((b) => b.name),
          outputs,
          ...(context ? { prompt: `Context: ${literal(context)}` } : {}),
        },
      ],
    };
  }
  return {
    table: `${ADHOC_SCHEMA}.${name}`,
    inputs,
    outputs: request.outputs,
    stages: [
      {
        name: "answer",
        kind: "llm",
        backends: config.backends.map((b) => b.name),
        prompt: lines.join("\n"),
        outputs,
      },
    ],
  };
}

/**
 * Creates an ad-hoc pipeline: validates it (ConfigError), records its definition for every other
 * process, and installs its table with the pipeline contract, in one transaction.
 */
export async function createAdhocPipeline(
  db: Db,
  config: GleanerConfig,
  request: AdhocRequest,
): Promise<PipelineConfig> {
  const name = `adhoc_${randomBytes(6).toString("hex")}`;
  const definition = adhocDefinition(request, name, config);
  const pipeline = resolvePipelineDefinition(name, definition, config.backends, config);
  await db.transaction().execute(async (trx) => {
    await trx
      .withSchema(config.schema)
      .insertInto("adhoc_pipelines")
      .values({ name, definition: JSON.stringify(definition) })
      .execute();
    await sql`select pg_advisory_xact_lock(hashtext(${"gleaner:install:" + name}))`.execute(trx);
    await installPipelineTable(trx, pipeline, config.schema);
  });
  return pipeline;
}

/** Ad-hoc pipelines recorded by any process: all of them, or one by name. */
export async function loadAdhocPipelines(
  db: Db,
  config: GleanerConfig,
  name?: string,
): Promise<PipelineConfig[]> {
  let query = db.withSchema(config.schema).selectFrom("adhoc_pipelines").selectAll();
  if (name !== undefined) query = query.where("name", "=", name);
  const rows = await query.orderBy("created_at").execute();
  return rows.map((r) => resolvePipelineDefinition(r.name, r.definition, config.backends, config));
}
