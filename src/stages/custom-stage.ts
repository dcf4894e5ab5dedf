import { pathToFileURL } from "node:url";
import type { CustomStageConfig } from "../config/config-types.ts";
import { coerceError } from "../core/coerce-error.ts";
import { validateBatchAnswer } from "../llm/json-schema-for-outputs.ts";
import type { OutputSpec } from "../core/output-types.ts";
import type {
  StageChunkResult,
  StageInputRow,
  StageRowResult,
  StageRunner,
} from "./stage-runner.ts";

/** What a custom stage module receives for each row. */
export interface CustomStageRow {
  key: string;
  fields: Record<string, unknown>;
  data: Record<string, unknown>;
}

export interface CustomStageContext {
  signal: AbortSignal;
  pipeline: string;
  stage: string;
  log: (message: string) => void;
}

/** What it returns per row key: values with a confidence each, or an error. */
export type CustomRowResult =
  | {
      values: Record<string, { value: unknown; confidence: number; sources?: string[] }>;
      data?: unknown;
    }
  | { error: string; permanent?: boolean; retryAfterMs?: number };

/**
 * A custom stage: a TypeScript or JavaScript module exporting this function (by default as its
 * default export). Its values are validated against the declared output types exactly like an
 * LLM's answer, so a wrong type is an error for that value, never a coerced default.
 */
export type CustomStageFunction = (
  rows: CustomStageRow[],
  context: CustomStageContext,
) => Promise<Record<string, CustomRowResult> | Map<string, CustomRowResult>>;

export async function createCustomStage(
  config: CustomStageConfig,
  outputs: readonly OutputSpec[],
): Promise<StageRunner> {
  let mod: Record<string, unknown>;
  try {
    mod = await importUserModule(config.module);
  } catch (error) {
    throw new Error(
      `stage ${config.name}: cannot load module ${config.module}: ${coerceError(error).message}`,
      { cause: error },
    );
  }
  const fn = mod[config.exportName];
  if (typeof fn !== "function")
    throw new Error(
      `stage ${config.name}: ${config.module} has no function export "${config.exportName}" (exports: ${Object.keys(mod).join(", ") || "none"})`,
    );
  const stageFn = fn as CustomStageFunction;
  const specs = config.outputs.map((name) => outputs.find((o) => o.name === name) as OutputSpec);

  return {
    config,
    async run(rows: readonly StageInputRow[], context): Promise<StageChunkResult> {
      const answer = await stageFn(
        rows.map((r) => ({ key: r.key, fields: { ...r.fields }, data: { ...r.data } })),
        {
          signal: context.signal,
          pipeline: context.pipeline,
          stage: config.name,
          log: context.log,
        },
      );
      const byKey = answer instanceof Map ? answer : new Map(Object.entries(answer));
      const results = new Map<string, StageRowResult>();
      for (const row of rows) {
        const got = byKey.get(row.key);
        if (!got) {
          results.set(row.key, {
            ok: false,
            failure: {
              errorClass: "invalid_output",
              message: "row missing from the stage's result",
              permanent: false,
            },
          });
        } else if ("error" in got) {
          results.set(row.key, {
            ok: false,
            failure: {
              errorClass: got.permanent ? "stage_permanent" : "stage_error",
              message: got.error,
              permanent: got.permanent ?? false,
              ...(got.retryAfterMs === undefined ? {} : { retryAfterMs: got.retryAfterMs }),
            },
          });
        } else {
          // Same validation as an LLM answer; jsonb travels as JSON text there.
          const entry: Record<string, unknown> = { id: row.key };
          for (const spec of specs) {
            const v = got.values[spec.name];
            entry[spec.name] =
              spec.type === "jsonb" && v && v.value !== null && typeof v.value !== "string"
                ? { ...v, value: JSON.stringify(v.value) }
                : (v ?? { value: null, confidence: 0 });
          }
          const checked = validateBatchAnswer({ rows: [entry] }, [row.key], specs).get(row.key);
          if (!checked?.ok) {
            results.set(row.key, {
              ok: false,
              failure: {
                errorClass: "invalid_output",
                message: checked?.error ?? "invalid",
                permanent: false,
              },
            });
            continue;
          }
          for (const spec of specs) {
            const sources = got.values[spec.name]?.sources;
            const value = checked.values[spec.name];
            if (value && sources) value.sources = sources;
          }
          results.set(row.key, { ok: true, values: checked.values, data: got.data });
        }
      }
      return {
        rows: results,
        calls: [],
        usage: new Map(),
      };
    },
  };
}

/**
 * A user's stage module. A TypeScript module is loaded through tsx's scoped `tsImport`: the
 * compiled command line has no TypeScript loader, and this one is not registered process-wide.
 */
async function importUserModule(path: string): Promise<Record<string, unknown>> {
  const href = pathToFileURL(path).href;
  if (!/\.[cm]?tsx?$/.test(path)) return (await import(href)) as Record<string, unknown>;
  const { tsImport } = await import("tsx/esm/api");
  return (await tsImport(href, import.meta.url)) as Record<string, unknown>;
}
