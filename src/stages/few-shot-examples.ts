import type { PipelineConfig } from "../config/config-types.ts";
import type { Db } from "../db/connect-database.ts";
import { countTokens } from "../llm/count-tokens.ts";
import {
  frozenExamples,
  latestReviewedRows,
  storeExamples,
  type StoredExamples,
} from "../sql/few-shot-examples.ts";

/**
 * Few-shot examples (pipelines.<p>.examples): the latest values a person approved or edited in
 * this pipeline's table, shown in an extraction stage's prompt as item → answer pairs, newest
 * first, as many as fit in `examples_max_tokens` (counted with the stage's model's tokenizer).
 * They teach the conventions a reviewer wants (wording, units, precision); they are no source.
 *
 * The examples are part of the prompt's text, so everything keyed by the question follows them:
 * the LLM answer cache (a question asked with other examples is another question: no cached
 * answer that ignored the current examples is ever served) and the batch prompt's row ids. A
 * `mode: batch` backend finds its answer by the exact question too, so while the stage has a
 * Batch API request on its way the section it was asked with is kept (few_shot_examples,
 * migrations/000019) and reused, and the rows that resume ask the same question.
 *
 * What they do not change: the stage's fingerprint (src/pipeline/stage-reuse.ts holds the
 * `examples` settings, not the examples). A review would otherwise make every row's finished
 * stage not current and re-ask, at full price, every row the next time it is touched; rows
 * already done keep their answers, and the rows asked from then on see the new examples.
 */

/** Reviewed rows read per prompt at most, before fitting them to the token limit. */
const CANDIDATES = 50;
/** How long a Batch API request may keep the examples as they were (its wait and margin). */
const FREEZE_AT_MOST_MS = 3 * 24 * 3_600_000;

export interface FewShotSource {
  /** The examples section for the next prompt ('' when there is none). */
  section(): Promise<string>;
}

export interface FewShotOptions {
  db: Db;
  /** Gleaner's schema. */
  schema: string;
  pipeline: PipelineConfig;
  stage: string;
  outputs: readonly string[];
  maxTokens: number;
  /** The model whose tokenizer counts the examples: the stage's first backend's. */
  model: string;
  /** How the stage writes an item from its fields, exactly as its rows are written. */
  renderItem: (fields: Record<string, unknown>) => string;
  /** Builds the section without recording it (`gleaner estimate` writes nothing). */
  readOnly?: boolean;
}

export function createFewShotSource(options: FewShotOptions): FewShotSource {
  const { db, schema, pipeline, stage } = options;
  return {
    async section() {
      const frozen = await frozenExamples(db, schema, pipeline.name, stage, FREEZE_AT_MOST_MS);
      if (frozen) return frozen.section;
      const rows = await latestReviewedRows(db, pipeline, options.outputs, CANDIDATES);
      const built = fewShotSection(
        rows.map((r) => ({ item: options.renderItem(r.fields), answers: r.answers })),
        options.maxTokens,
        options.model,
      );
      if (!options.readOnly) await storeExamples(db, schema, pipeline.name, stage, built);
      return built.section;
    },
  };
}

const HEADING =
  "## Examples\nAnswers a person checked for other items, to follow in wording, units and " +
  "precision. They are examples, not sources: never copy a value from them.";

/**
 * The examples section: each example's item and answer, every line quoted with `> ` so no text
 * of a row can start a line of the prompt (a heading, a row id). Newest first, within maxTokens
 * (heading included); '' when none fits.
 */
export function fewShotSection(
  examples: readonly { item: string; answers: Record<string, unknown> }[],
  maxTokens: number,
  model: string,
): StoredExamples {
  let used = countTokens(HEADING, model);
  const parts: string[] = [];
  for (const example of examples) {
    if (Object.keys(example.answers).length === 0) continue;
    const text = `${example.item}\nanswer: ${JSON.stringify(example.answers)}`
      .split("\n")
      .map((line) => `> ${line}`)
      .join("\n");
    const tokens = countTokens(text, model) + 1;
    if (used + tokens > maxTokens) continue;
    used += tokens;
    parts.push(text);
  }
  return parts.length === 0
    ? { section: "", examples: 0 }
    : { section: [HEADING, ...parts].join("\n\n"), examples: parts.length };
}
