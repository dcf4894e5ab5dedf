import { createHash } from "node:crypto";
import { sql, type Transaction } from "kysely";
import type { GleanerConfig, PipelineConfig } from "../config/config-types.ts";
import { resolvePipelineDefinition } from "../config/load-config.ts";
import type { Db } from "../db/connect-database.ts";
import type { GleanerDatabase } from "../db/database-types.ts";
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

/** An ad-hoc request resolved to its pipeline, before anything is written. */
export interface AdhocPipeline {
  /** `adhoc_` and a hash of the normalised definition: identical requests get one name. */
  readonly name: string;
  readonly definition: Record<string, unknown>;
  readonly pipeline: PipelineConfig;
}

/**
 * Validates an ad-hoc request (ConfigError, as for gleaner.yaml) and names it after its
 * definition, so that N identical requests share one pipeline and one table instead of creating
 * N. The definition is normalised first: object keys in any order, outputs in any order and
 * whitespace around the search context make no difference; inputs keep their order (it is the
 * order the prompt lists them in).
 */
export function resolveAdhocPipeline(config: GleanerConfig, request: AdhocRequest): AdhocPipeline {
  const normalised = { ...request, outputs: sortedKeys(request.outputs) };
  const hash = createHash("sha256")
    .update(canonicalJson(adhocDefinition(normalised, "adhoc", config)))
    .digest("hex");
  // 80 bits: no two definitions meet by chance; a short name keeps index names under 63 bytes.
  const name = `adhoc_${hash.slice(0, 20)}`;
  const definition = adhocDefinition(normalised, name, config);
  return {
    name,
    definition,
    pipeline: resolvePipelineDefinition(name, definition, config.backends, config),
  };
}

/**
 * Creates the ad-hoc schema if it is missing. Its own short transaction, serialised by an
 * advisory lock: two first requests at once would otherwise both run CREATE SCHEMA and one would
 * fail on the catalog's unique index. The schema stays even when the request that created it is
 * refused; it is empty then, and every later ad-hoc pipeline needs it.
 */
export async function ensureAdhocSchema(db: Db): Promise<void> {
  await db.transaction().execute(async (trx) => {
    await sql`select pg_advisory_xact_lock(hashtext(${"gleaner:adhoc-schema"}))`.execute(trx);
    await sql`create schema if not exists ${sql.id(ADHOC_SCHEMA)}`.execute(trx);
  });
}

/**
 * Records an ad-hoc pipeline for every other process and installs its table, in the caller's
 * transaction: when the caller's work fails afterwards (its rows are refused), the record and
 * the table go with it. An identical pipeline recorded before is reused.
 *
 * Why it is safe: the per-pipeline install lock (the one `gleaner migrate` takes) is taken
 * first, so a second identical request waits until the first commits or rolls back, then finds
 * the record (and skips the insert) or not (and creates it). A recorded name whose definition
 * differs would be a hash collision; it is refused rather than mixed up.
 */
export async function recordAdhocPipeline(
  trx: Transaction<GleanerDatabase>,
  config: GleanerConfig,
  adhoc: AdhocPipeline,
): Promise<void> {
  await sql`select pg_advisory_xact_lock(hashtext(${"gleaner:install:" + adhoc.name}))`.execute(
    trx,
  );
  const inserted = await trx
    .withSchema(config.schema)
    .insertInto("adhoc_pipelines")
    .values({ name: adhoc.name, definition: JSON.stringify(adhoc.definition) })
    .onConflict((oc) => oc.column("name").doNothing())
    .returning("name")
    .executeTakeFirst();
  if (!inserted) {
    const recorded = await trx
      .withSchema(config.schema)
      .selectFrom("adhoc_pipelines")
      .select("definition")
      .where("name", "=", adhoc.name)
      .executeTakeFirstOrThrow();
    if (canonicalJson(recorded.definition) !== canonicalJson(adhoc.definition))
      throw new Error(
        `ad-hoc pipeline ${adhoc.name} is recorded with another definition (a hash collision); delete it from ${config.schema}.adhoc_pipelines`,
      );
  }
  await installPipelineTable(trx, adhoc.pipeline, config.schema);
}

/** JSON with every object's keys sorted: equal values give equal text. */
function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v !== null && typeof v === "object" && !Array.isArray(v) ? sortedKeys(v) : v,
  );
}

/** A copy with the keys in order; anything but a plain object is returned as it is. */
function sortedKeys<T>(value: T): T {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return value;
  const entries = Object.entries(value).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return Object.fromEntries(entries) as T;
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
