import type { LlmStageConfig } from "../config/config-types.ts";
import { renderTemplate } from "../config/template-fields.ts";
import { callCascade } from "../llm/call-cascade.ts";
import { buildAnswerSchema, validateBatchAnswer } from "../llm/json-schema-for-outputs.ts";
import { LlmError } from "../llm/llm-error.ts";
import type { LlmBackend, OutputSpec } from "../llm/llm-types.ts";
import { usageShare } from "../pipeline/row-state.ts";
import type {
  StageChunkResult,
  StageContext,
  StageInputRow,
  StageRowResult,
  StageRunner,
} from "./stage-runner.ts";

const DEFAULT_SYSTEM =
  "You fill in data fields about the items you are given. Answer with JSON only. " +
  'For every item give every field as {"value": ..., "confidence": 0..1}. ' +
  "Use null when you do not know; never guess a value to fill the gap. " +
  "Confidence is the probability your value is right.";

/**
 * An `llm` stage: one prompt for up to batch_size rows, the answer mapped back by row id.
 * A row missing or malformed in the answer fails alone; the others keep their values.
 */
export function createLlmStage(
  config: LlmStageConfig,
  outputs: readonly OutputSpec[],
  backends: readonly LlmBackend[],
): StageRunner {
  const specs = config.outputs.map((name) => outputs.find((o) => o.name === name) as OutputSpec);
  const schema = buildAnswerSchema(specs);
  const fieldList = specs.map((o) => `- ${o.name} (${o.type}): ${o.description}`).join("\n");

  return {
    config,
    async run(rows: readonly StageInputRow[], context: StageContext): Promise<StageChunkResult> {
      const prompt = [
        `Fill these fields for each item below:\n${fieldList}`,
        `Answer as {"rows": [{"id": "<item id>", ${specs.map((o) => `"${o.name}": {"value": ..., "confidence": ...}`).join(", ")}}]} with one entry per item.`,
        ...rows.map((r) => `### row ${r.key}\n${renderTemplate(config.prompt, r.fields)}`),
      ].join("\n\n");
      const system =
        config.system === undefined
          ? DEFAULT_SYSTEM
          : `${renderTemplate(config.system, rows[0]?.fields ?? {})}\n\n${DEFAULT_SYSTEM}`;
      try {
        const answer = await callCascade([...backends], {
          system,
          prompt,
          schema,
          schemaName: `${config.name}_answer`,
          signal: context.signal,
        });
        const parsed = validateBatchAnswer(
          answer.json,
          rows.map((r) => r.key),
          specs,
        );
        const results = new Map<string, StageRowResult>();
        for (const row of rows) {
          const found = parsed.get(row.key);
          if (!found || !found.ok) {
            results.set(row.key, {
              ok: false,
              failure: {
                errorClass: "invalid_output",
                message: `${answer.backend}: ${found && !found.ok ? found.error : "row missing from the answer"}`,
                permanent: false,
              },
            });
          } else {
            results.set(row.key, { ok: true, values: found.values });
          }
        }
        return {
          rows: results,
          calls: answer.attempts,
          usagePerRow: usageShare(answer.attempts, rows.length),
          backend: answer.backend,
          model: answer.model,
        };
      } catch (error) {
        if (!(error instanceof LlmError)) throw error;
        const failure = {
          errorClass: error.errorClass,
          message: error.message,
          permanent: error.permanent,
          ...(error.retryAfterMs === undefined ? {} : { retryAfterMs: error.retryAfterMs }),
        };
        return {
          rows: new Map(rows.map((r) => [r.key, { ok: false, failure }])),
          calls: error.attempts,
          usagePerRow: usageShare(error.attempts, rows.length),
        };
      }
    },
  };
}
