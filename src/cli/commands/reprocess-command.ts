import { reprocessRows } from "../../sql/reprocess-rows.ts";
import { cliPipeline, openFromCli } from "../cli-context.ts";
import { UsageError } from "../exit-codes.ts";

export async function reprocessCommand(
  pipeline: string,
  options: { config: string; where?: string; status?: string; below?: string },
): Promise<number> {
  const allowed = ["failed", "exhausted", "done", "pending"] as const;
  const status = options.status as (typeof allowed)[number] | undefined;
  if (status !== undefined && !allowed.includes(status))
    throw new UsageError(`--status must be one of ${allowed.join(", ")}, not "${options.status}"`);
  const below = options.below === undefined ? undefined : Number(options.below);
  if (below !== undefined && !(below >= 0 && below <= 1))
    throw new UsageError(`--below must be a confidence between 0 and 1, not "${options.below}"`);
  const app = await openFromCli(options);
  try {
    const entry = cliPipeline(app, pipeline, options.config);
    const n = await reprocessRows(app.database.db, entry.pipeline, {
      ...(options.where ? { where: options.where } : {}),
      ...(status ? { status } : {}),
      ...(below !== undefined ? { below } : {}),
    });
    console.log(`pipeline ${pipeline}: ${n} rows are pending again`);
    return 0;
  } finally {
    await app.close();
  }
}
