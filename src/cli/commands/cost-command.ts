import { readCostReport, type CostGrouping } from "../../sql/cost-report.ts";
import { cliPipeline, openFromCli } from "../cli-context.ts";
import { UsageError } from "../exit-codes.ts";
import { printTable, usd } from "../print-table.ts";

const GROUPINGS: readonly CostGrouping[] = ["stage", "backend", "day", "row"];

/** `gleaner cost PIPELINE [--by stage|backend|day|row] [--json]`: what the ledger says was spent. */
export async function costCommand(
  pipeline: string,
  options: { config: string; by?: string; json?: boolean },
): Promise<number> {
  const by = (options.by ?? "stage") as CostGrouping;
  if (!GROUPINGS.includes(by))
    throw new UsageError(`--by must be one of ${GROUPINGS.join(", ")}, not "${options.by}"`);
  const app = await openFromCli(options);
  try {
    cliPipeline(app, pipeline, options.config);
    const lines = await readCostReport(app.database.db, app.config.schema, pipeline, by);
    const total = lines.reduce(
      (t, l) => ({
        calls: t.calls + l.calls,
        input_tokens: t.input_tokens + l.input_tokens,
        output_tokens: t.output_tokens + l.output_tokens,
        cost_usd: t.cost_usd + l.cost_usd,
      }),
      { calls: 0, input_tokens: 0, output_tokens: 0, cost_usd: 0 },
    );
    if (options.json) {
      console.log(JSON.stringify({ pipeline, by, lines, total }, null, 2));
      return 0;
    }
    printTable(
      [by, "calls", "input tokens", "output tokens", "cost"],
      [...lines, { group: "total", ...total }].map((l) => [
        l.group,
        String(Math.round(l.calls * 100) / 100),
        String(l.input_tokens),
        String(l.output_tokens),
        usd(l.cost_usd),
      ]),
    );
    return 0;
  } finally {
    await app.close();
  }
}
