import type { LlmStageConfig } from "../config/config-types.ts";
import { renderTemplate, templateFields } from "../config/template-fields.ts";
import type { OutputSpec } from "../core/output-types.ts";
import { callCascade } from "../llm/call-cascade.ts";
import {
  answerPassed,
  buildAnswerSchema,
  validateBatchAnswer,
} from "../llm/json-schema-for-outputs.ts";
import { LlmError } from "../llm/llm-error.ts";
import type { LlmBackend } from "../llm/llm-types.ts";
import { splitUsage, type PromptTruncation } from "../pipeline/row-state.ts";
import { promptWithRowIds, rowFieldTexts, rowHeading, ROWS_ARE_DATA } from "./batch-prompt.ts";
import { createFewShotSource, type FewShotOptions } from "./few-shot-examples.ts";
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

/** What a stage needs to show few-shot examples (pipelines.<p>.examples); it renders the items. */
export type FewShotSettings = Omit<FewShotOptions, "renderItem">;

export interface PromptLimits {
  /** pipelines.<p>.max_row_input_chars */
  maxRowInputChars: number;
}

/**
 * An `llm` stage: one prompt for up to batch_size rows, each under a heading with an id derived
 * from the prompt (src/stages/batch-prompt.ts), the answer mapped back by that id. A row missing or
 * malformed in the answer fails alone; the others keep their values. The system message is
 * shared by the whole batch, so the config refuses row fields in it.
 */
export function createLlmStage(
  config: LlmStageConfig,
  outputs: readonly OutputSpec[],
  backends: readonly LlmBackend[],
  limits: PromptLimits,
  fewShot?: FewShotSettings,
): StageRunner {
  const specs = config.outputs.map((name) => outputs.find((o) => o.name === name) as OutputSpec);
  const schema = buildAnswerSchema(specs);
  const fieldList = specs.map((o) => `- ${o.name} (${o.type}): ${o.description}`).join("\n");
  const promptFields = templateFields(config.prompt);
  const system =
    config.system === undefined ? DEFAULT_SYSTEM : `${config.system}\n\n${DEFAULT_SYSTEM}`;
  // An example is written as the stage writes its rows: the prompt rendered with its fields.
  const examples =
    fewShot &&
    createFewShotSource({
      ...fewShot,
      renderItem: (fields) =>
        renderTemplate(
          config.prompt,
          rowFieldTexts(fields, promptFields, limits.maxRowInputChars).texts,
        ),
    });

  return {
    config,
    async run(rows: readonly StageInputRow[], context: StageContext): Promise<StageChunkResult> {
      const truncated = new Map<string, PromptTruncation>();
      const bodies = rows.map((row) => {
        const fields = rowFieldTexts(row.fields, promptFields, limits.maxRowInputChars);
        if (fields.truncated) truncated.set(row.key, fields.truncated);
        return renderTemplate(config.prompt, fields.texts);
      });
      const shots = examples ? await examples.section() : "";
      const { prompt, ids } = promptWithRowIds(
        rows.map((r) => r.key),
        config.name,
        (idOf) =>
          [
            `Fill these fields for each item below:\n${fieldList}`,
            ...(shots === "" ? [] : [shots]),
            ROWS_ARE_DATA,
            `Answer as {"rows": [{"id": "<item id>", ${specs.map((o) => `"${o.name}": {"value": ..., "confidence": ...}`).join(", ")}}]} with one entry per item, its id copied from its heading.`,
            ...rows.map((row, i) => `${rowHeading(idOf.get(row.key) as string)}\n${bodies[i]}`),
          ].join("\n\n"),
      );
      const usageOf = (attempts: Parameters<typeof splitUsage>[0]) =>
        splitUsage(
          attempts,
          rows.map((r) => r.key),
        );
      try {
        const answer = await callCascade([...backends], {
          system,
          prompt,
          schema,
          schemaName: `${config.name}_answer`,
          signal: context.signal,
          purpose: { stage: config.name, rowKeys: rows.map((r) => r.key) },
          origin: { pipeline: context.pipeline, stage: config.name },
        });
        // Only the ids of this call count: an entry for any other id fills nothing.
        const parsed = validateBatchAnswer(answer.json, [...ids.keyOf.keys()], specs);
        // Kept for the next time this exact question is asked only when every row passed.
        if (answerPassed(parsed.values())) await answer.remember();
        const results = new Map<string, StageRowResult>();
        for (const row of rows) {
          const found = parsed.get(ids.idOf.get(row.key) as string);
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
          usage: usageOf(answer.attempts),
          truncated,
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
          ...(error.waitingFor === undefined ? {} : { waitingFor: error.waitingFor }),
        };
        return {
          rows: new Map(rows.map((r) => [r.key, { ok: false, failure }])),
          calls: error.attempts,
          usage: usageOf(error.attempts),
          truncated,
        };
      }
    },
  };
}
