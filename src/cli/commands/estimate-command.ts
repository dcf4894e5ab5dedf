import { estimatePipeline } from "../estimate-pipeline.ts";
import { cliPipeline, openFromCli } from "../cli-context.ts";
import { UsageError } from "../exit-codes.ts";
import { printTable, usd } from "../print-table.ts";

/** `gleaner estimate PIPELINE [--where SQL] [--limit N] [--json]`: what a run would spend. */
export async function estimateCommand(
  pipeline: string,
  options: { config: string; where?: string; limit?: string; json?: boolean },
): Promise<number> {
  const limit = options.limit === undefined ? 20 : Number(options.limit);
  if (!Number.isInteger(limit) || limit < 1 || limit > 10_000)
    throw new UsageError(`--limit must be a whole number from 1 to 10000, not "${options.limit}"`);
  const app = await openFromCli(options);
  try {
    const entry = cliPipeline(app, pipeline, options.config);
    const estimate = await estimatePipeline(app.database.db, app.config, entry.pipeline, {
      ...(options.where ? { where: options.where } : {}),
      limit,
    });
    if (options.json) {
      console.log(JSON.stringify(estimate, null, 2));
      return 0;
    }
    console.log(
      `pipeline ${pipeline}: ${estimate.matching_rows} rows ${options.where ? "match" : "due"}; prompts rendered for ${estimate.sampled_rows}`,
    );
    printTable(
      [
        "stage",
        "kind",
        "model",
        "tokenizer",
        "basis",
        "calls",
        "input tokens",
        "output tokens",
        "answers from",
        "cache hits",
        "cost",
      ],
      [
        ...estimate.stages.map((s) => [
          s.stage,
          s.kind,
          s.model ?? "-",
          s.tokenizer ?? "-",
          s.basis,
          String(s.calls),
          String(s.input_tokens),
          String(s.output_tokens),
          s.answer_size_from ?? "-",
          `${Math.round(s.cache_hit_ratio * 100)}%`,
          s.basis === "none" ? "-" : usd(s.cost_usd),
        ]),
        ["total", "", "", "", "", "", "", "", "", "", usd(estimate.total_usd)],
      ],
    );
    return 0;
  } finally {
    await app.close();
  }
}
