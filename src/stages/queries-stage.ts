import type { QueriesStageConfig } from "../config/config-types.ts";
import { callCascade } from "../llm/call-cascade.ts";
import { LlmError } from "../llm/llm-error.ts";
import type { OutputSpec } from "../core/output-types.ts";
import type { LlmAttempt, LlmBackend } from "../llm/llm-types.ts";
import { splitUsage } from "../pipeline/row-state.ts";
import { normalizeQuery } from "../search/search-cache.ts";
import type {
  StageChunkResult,
  StageContext,
  StageInputRow,
  StageRowResult,
  StageRunner,
} from "./stage-runner.ts";

/** What a `queries` stage keeps in the row's state for the `search` stage. */
export interface QueriesData {
  queries: PlannedQuery[];
  /** The LLM was asked and failed: the templates' queries were used alone. */
  llm_error?: string;
}

export interface PlannedQuery {
  query: string;
  category: string;
  /** 1 = search first. */
  priority: number;
  origin: "template" | "llm";
}

const FIELD = /\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}/g;

/** A query from a template: an unknown field becomes nothing, not the word "unknown". */
export function renderQuery(template: string, fields: Record<string, unknown>): string {
  const text = template.replace(FIELD, (_whole, name: string) => {
    const value = fields[name];
    if (value === null || value === undefined) return "";
    if (value instanceof Date) return value.toISOString().replace(/T00:00:00\.000Z$/, "");
    if (typeof value === "string") return value;
    // Quotes would make a search engine look for an exact phrase.
    return JSON.stringify(value).replace(/"/g, "");
  });
  return text.replace(/\s+/g, " ").trim();
}

/**
 * Search queries for each row: from templates, and optionally written by an LLM (N per row,
 * each with a category and a priority). Queries are deduplicated per row; identical queries of
 * different rows are made once by the search stage's cache.
 */
export function createQueriesStage(
  config: QueriesStageConfig,
  outputs: readonly OutputSpec[],
  backends: readonly LlmBackend[],
): StageRunner {
  const wanted = outputs.map((o) => `- ${o.name}: ${o.description}`).join("\n");
  const schema = {
    type: "object",
    additionalProperties: false,
    required: ["rows"],
    properties: {
      rows: {
        type: "array",
        items: {
          type: "object",
          additionalProperties: false,
          required: ["id", "queries"],
          properties: {
            id: { type: "string" },
            queries: {
              type: "array",
              items: {
                type: "object",
                additionalProperties: false,
                required: ["query", "category", "priority"],
                properties: {
                  query: { type: "string" },
                  category: { type: "string" },
                  priority: { type: "integer" },
                },
              },
            },
          },
        },
      },
    },
  };

  return {
    config,
    async run(rows: readonly StageInputRow[], context: StageContext): Promise<StageChunkResult> {
      const fieldsOf = (row: StageInputRow) => ({
        ...row.fields,
        search_context: config.searchContext,
      });
      let fromLlm = new Map<string, PlannedQuery[]>();
      let calls: LlmAttempt[] = [];
      let llmError: string | undefined;
      if (config.llm) {
        try {
          const llm = config.llm;
          const answer = await callCascade([...backends], {
            system:
              "You write web search queries that find pages holding facts about the items given. " +
              "Answer with JSON only.",
            prompt: [
              `For each item, write ${llm.count} search queries that would find pages stating:\n${wanted}`,
              config.searchContext ? `Context: ${config.searchContext}` : "",
              "Give each query a category (official_site, facts, directory, news or other) and a " +
                "priority (1 = most promising).",
              `Answer as {"rows": [{"id": "<item id>", "queries": [{"query", "category", "priority"}]}]}.`,
              ...rows.map(
                (r) =>
                  `### row ${r.key}\n${
                    llm.prompt
                      ? renderQuery(llm.prompt, fieldsOf(r))
                      : Object.entries(r.fields)
                          .filter(([, v]) => v !== null && v !== undefined)
                          .map(([k, v]) => `${k}: ${typeof v === "string" ? v : JSON.stringify(v)}`)
                          .join("\n")
                  }`,
              ),
            ]
              .filter((part) => part !== "")
              .join("\n\n"),
            schema,
            schemaName: `${config.name}_queries`,
            signal: context.signal,
            purpose: { stage: config.name, rowKeys: rows.map((r) => r.key) },
          });
          calls = answer.attempts;
          fromLlm = parseLlmQueries(answer.json, llm.count);
          // Cached only when every row got queries: a gap is asked again next time.
          if (rows.every((r) => (fromLlm.get(r.key)?.length ?? 0) > 0)) await answer.remember();
        } catch (error) {
          if (!(error instanceof LlmError)) throw error;
          calls = error.attempts;
          llmError = `${error.errorClass}: ${error.message}`;
          context.log(`queries stage ${config.name}: LLM failed, using templates: ${llmError}`);
        }
      }

      const results = new Map<string, StageRowResult>();
      for (const row of rows) {
        const planned: PlannedQuery[] = [...(fromLlm.get(row.key) ?? [])];
        config.templates.forEach((template, i) => {
          let query = renderQuery(template, fieldsOf(row));
          if (config.searchContext && !/\{\{\s*search_context\s*\}\}/.test(template))
            query = `${query} ${config.searchContext}`.trim();
          planned.push({ query, category: "template", priority: i + 1, origin: "template" });
        });
        const seen = new Set<string>();
        const queries = planned
          .filter((q) => {
            const key = normalizeQuery(q.query);
            if (key === "" || seen.has(key)) return false;
            seen.add(key);
            return true;
          })
          .slice(0, config.maxQueries);
        if (queries.length === 0) {
          results.set(row.key, {
            ok: false,
            failure: {
              errorClass: "no_query",
              message: `no search query could be built: the row's inputs used by ${config.name}'s templates are empty`,
              permanent: true,
            },
          });
          continue;
        }
        const data: QueriesData = { queries, ...(llmError ? { llm_error: llmError } : {}) };
        results.set(row.key, { ok: true, values: {}, data });
      }
      return {
        rows: results,
        calls,
        usage: splitUsage(
          calls,
          rows.map((r) => r.key),
        ),
      };
    },
  };
}

function parseLlmQueries(json: unknown, count: number): Map<string, PlannedQuery[]> {
  const out = new Map<string, PlannedQuery[]>();
  const rows = (json as { rows?: unknown })?.rows;
  if (!Array.isArray(rows)) return out;
  for (const entry of rows as Array<Record<string, unknown>>) {
    const id =
      typeof entry?.id === "string" || typeof entry?.id === "number" ? String(entry.id) : "";
    if (!id || !Array.isArray(entry.queries)) continue;
    const queries = (entry.queries as Array<Record<string, unknown>>)
      .filter((q) => typeof q?.query === "string" && q.query.trim() !== "")
      .map((q) => ({
        query: (q.query as string).replace(/\s+/g, " ").trim(),
        category: typeof q.category === "string" ? q.category : "other",
        priority: typeof q.priority === "number" ? q.priority : count,
        origin: "llm" as const,
      }))
      .sort((a, b) => a.priority - b.priority)
      .slice(0, count);
    out.set(id, queries);
  }
  return out;
}
