import { EvalUsageError } from "../../eval/eval-usage-error.ts";
import { missedThresholds, parseFailBelow, type Threshold } from "../../eval/fail-below.ts";
import { runEval } from "../../eval/run-eval.ts";
import { openFromCli } from "../cli-context.ts";
import { EXIT_FAILURE, EXIT_OK, UsageError } from "../exit-codes.ts";
import { loadCliConfig } from "../load-cli-config.ts";
import { printDifferences, printEvalReport, reportDifferences } from "../print-eval-report.ts";

export interface EvalOptions {
  config: string;
  golden?: string;
  limit?: string;
  against?: string;
  failBelow?: string;
  json?: boolean;
  timeout?: string;
}

/**
 * `gleaner eval PIPELINE --golden FILE.csv|TABLE [--limit N] [--against other.yaml]
 * [--fail-below precision=0.9,…] [--json]`: runs the pipeline over a golden set in a shadow
 * table and reports how often it is right. Exit 1 when a --fail-below figure is missed.
 */
export async function evalCommand(pipeline: string, options: EvalOptions): Promise<number> {
  const limit = options.limit === undefined ? undefined : Number(options.limit);
  if (limit !== undefined && (!Number.isInteger(limit) || limit < 1))
    throw new UsageError(`--limit must be a whole number from 1, not "${options.limit}"`);
  const timeout = options.timeout === undefined ? undefined : Number(options.timeout);
  if (timeout !== undefined && !(timeout > 0))
    throw new UsageError(`--timeout must be a number of seconds, not "${options.timeout}"`);
  const thresholds: Threshold[] = options.failBelow
    ? asUsage(() => parseFailBelow(options.failBelow as string))
    : [];
  const against = options.against ? loadCliConfig(options.against) : undefined;
  const app = await openFromCli(options);
  try {
    const outcome = await runEval({
      database: app.database,
      config: app.config,
      pipeline,
      golden: options.golden,
      ...(limit ? { limit } : {}),
      ...(against ? { against } : {}),
      ...(timeout ? { timeoutMs: timeout * 1000 } : {}),
      logger: app.logger,
    }).catch((error: unknown) => {
      if (error instanceof EvalUsageError) throw new UsageError(error.message, { cause: error });
      throw error;
    });
    const missed = asUsage(() => missedThresholds(outcome.report, thresholds));
    if (options.json) {
      console.log(
        JSON.stringify(
          {
            ...outcome.report,
            ...(outcome.against
              ? {
                  against: outcome.against,
                  differences: reportDifferences(outcome.report, outcome.against),
                }
              : {}),
            calibration_stored: outcome.stored,
            fail_below: { thresholds, missed },
          },
          null,
          2,
        ),
      );
    } else {
      printEvalReport(outcome.report, "eval");
      if (outcome.against) {
        console.log("");
        printEvalReport(outcome.against, "against");
        console.log("");
        printDifferences(outcome.report, outcome.against);
      }
      if (outcome.stored)
        console.log(
          `calibration stored for pipeline ${pipeline}: its runs settle calibrated confidences`,
        );
    }
    for (const line of missed) app.logger.error(`eval: ${line}`);
    const timedOut = [outcome.report, outcome.against].some((r) => r?.latency.timed_out);
    if (timedOut)
      app.logger.error("eval: timed out with rows still in flight; their cells count as empty");
    return missed.length > 0 || timedOut ? EXIT_FAILURE : EXIT_OK;
  } finally {
    await app.close();
  }
}

/** An eval that cannot run as asked is bad usage: exit 2 with the message. */
function asUsage<T>(fn: () => T): T {
  try {
    return fn();
  } catch (error) {
    if (error instanceof EvalUsageError) throw new UsageError(error.message, { cause: error });
    throw error;
  }
}
