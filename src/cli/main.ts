import { Command, CommanderError, Option } from "commander";
import { ConfigError } from "../config/config-error.ts";
import { maskSecrets, urlCredentials } from "../core/mask-secrets.ts";
import { TableContractError } from "../db/table-contract-error.ts";
import { guardStandardStreams } from "../log/log-destination.ts";
import { NotMigratedError } from "../pipeline/not-migrated-error.ts";
import { EXIT_FAILURE, EXIT_USAGE, UsageError } from "./exit-codes.ts";

// Each command's implementation is imported when that command runs: `gleaner --help` must not
// load the database driver, graphile-worker, the LLM client and the crawler to print its text.
const commands = {
  cost: () => import("./commands/cost-command.ts"),
  doctor: () => import("./commands/doctor-command.ts"),
  estimate: () => import("./commands/estimate-command.ts"),
  export: () => import("./commands/export-command.ts"),
  import: () => import("./commands/import-command.ts"),
  eval: () => import("./commands/eval-command.ts"),
  migrate: () => import("./commands/migrate-command.ts"),
  reprocess: () => import("./commands/reprocess-command.ts"),
  run: () => import("./commands/run-commands.ts"),
  status: () => import("./commands/status-command.ts"),
};

const configOption = () =>
  new Option("-c, --config <file>", "the config file").default("./gleaner.yaml");

export function buildProgram(setExit: (code: number) => void): Command {
  const program = new Command("gleaner")
    .description(
      "Fills the NULL columns of a PostgreSQL table from web search, crawling and LLM extraction " +
        "(or chains of LLM stages), driven by a cron sweep and graphile-worker jobs. Every command reads --config (default ./gleaner.yaml) and honours " +
        "DATABASE_URL; with neither database_url nor DATABASE_URL set, an embedded PostgreSQL " +
        "runs under ./.gleaner/.",
    )
    .showHelpAfterError()
    .exitOverride();
  const wrap =
    <A extends unknown[]>(fn: (...args: A) => Promise<number>) =>
    async (...args: A) => {
      setExit(await fn(...args));
    };

  program
    .command("migrate")
    .description(
      "create Gleaner's schema, give each pipeline's table its state columns, indexes and triggers " +
        "(loading its seed CSV when the table is new), and index local search corpus folders",
    )
    .addOption(configOption())
    .action(wrap(async (o: { config: string }) => (await commands.migrate()).migrateCommand(o)));
  program
    .command("start")
    .description(
      "migrate, then run the scheduler, workers and the HTTP port (status page, API, /metrics, " +
        "/healthz, /readyz, /corpus/); shows progress and a completeness summary",
    )
    .addOption(configOption())
    .option("--no-migrate", "do not run migrations first")
    .option("--no-http", "do not open the HTTP port")
    .option("--concurrency <n>", "jobs at once in this process (default: worker.concurrency)")
    .action(wrap(async (o: { config: string }) => (await commands.run()).startCommand(o)));
  program
    .command("worker")
    .description("run jobs only (pair with `gleaner sweep` or `gleaner start` elsewhere)")
    .addOption(configOption())
    .option("--http", "also open the HTTP port")
    .option("--concurrency <n>", "jobs at once in this process (default: worker.concurrency)")
    .action(wrap(async (o: { config: string }) => (await commands.run()).workerCommand(o)));
  program
    .command("sweep")
    .description("run the scheduler only: claim due rows and enqueue their jobs")
    .addOption(configOption())
    .option("--once", "one tick per pipeline, then exit")
    .action(
      wrap(async (o: { config: string; once?: boolean }) => (await commands.run()).sweepCommand(o)),
    );
  program
    .command("drain")
    .description("process every row due now, then exit (retries due later are left for later)")
    .addOption(configOption())
    .option("--concurrency <n>", "jobs at once (default: worker.concurrency)")
    .option("--timeout <seconds>", "give up after this long (exit 1)")
    .action(wrap(async (o: { config: string }) => (await commands.run()).drainCommand(o)));
  program
    .command("status")
    .description(
      "per pipeline: total, done, pending, queued, running, failed, exhausted, completeness, oldest pending",
    )
    .addOption(configOption())
    .option("--json", "print JSON")
    .action(
      wrap(async (o: { config: string; json?: boolean }) =>
        (await commands.status()).statusCommand(o),
      ),
    );
  program
    .command("reprocess")
    .description(
      "make rows pending again (attempts reset); with no filter, every row of the pipeline",
    )
    .argument("<pipeline>", "the pipeline name")
    .addOption(configOption())
    .option("--where <sql>", "only rows matching this SQL condition, e.g. \"country = 'FR'\"")
    .addOption(
      new Option("--status <status>", "only rows in this status").choices([
        "failed",
        "exhausted",
        "done",
        "pending",
      ]),
    )
    .option("--below <confidence>", "only rows whose confidence is below this (0..1)")
    .action(
      wrap(
        (
          pipeline: string,
          o: { config: string; where?: string; status?: string; below?: string },
        ) => commands.reprocess().then((m) => m.reprocessCommand(pipeline, o)),
      ),
    );
  program
    .command("estimate")
    .description(
      "what a run would spend, per stage: calls, tokens (the model's own tokenizer) and dollars, " +
        "from the prompts rendered for a sample of the due rows (or --where), expected answer " +
        "sizes (the cost ledger's history, else the answer schema), the price table and expected " +
        "answer-cache hits; nothing is sent",
    )
    .argument("<pipeline>", "the pipeline name")
    .addOption(configOption())
    .option("--where <sql>", "rows matching this SQL condition instead of the due rows (read only)")
    .option("--limit <n>", "rows whose prompts are rendered (default 20)")
    .option("--json", "print JSON")
    .action(
      wrap(
        async (
          pipeline: string,
          o: { config: string; where?: string; limit?: string; json?: boolean },
        ) => (await commands.estimate()).estimateCommand(pipeline, o),
      ),
    );
  program
    .command("cost")
    .description("what a pipeline spent, from the cost ledger: calls, tokens and dollars")
    .argument("<pipeline>", "the pipeline name")
    .addOption(configOption())
    .addOption(
      new Option("--by <grouping>", "group by")
        .choices(["stage", "backend", "day", "row"])
        .default("stage"),
    )
    .option("--json", "print JSON")
    .action(
      wrap(async (pipeline: string, o: { config: string; by?: string; json?: boolean }) =>
        (await commands.cost()).costCommand(pipeline, o),
      ),
    );
  program
    .command("export")
    .description(
      "write every row (or --where) with its values, confidence and sources, as CSV or JSON " +
        "lines, streamed from a cursor (constant memory); to stdout or --out",
    )
    .argument("<pipeline>", "the pipeline name")
    .addOption(configOption())
    .addOption(
      new Option("--format <format>", "csv or jsonl").choices(["csv", "jsonl"]).default("csv"),
    )
    .option("--where <sql>", "only rows matching this SQL condition (read only)")
    .option("--out <file>", "write to this file instead of stdout")
    .action(
      wrap(
        async (
          pipeline: string,
          o: { config: string; format?: string; where?: string; out?: string },
        ) => (await commands.export()).exportCommand(pipeline, o),
      ),
    );
  program
    .command("import")
    .description(
      "insert a CSV file's rows (header: column names) into the pipeline's table with one COPY; " +
        "they become pending. A bad value names its line and column and inserts nothing",
    )
    .argument("<pipeline>", "the pipeline name")
    .argument("<file>", "the CSV file")
    .addOption(configOption())
    .option("--json", "print the result as JSON")
    .action(
      wrap(async (pipeline: string, file: string, o: { config: string; json?: boolean }) =>
        (await commands.import()).importCommand(pipeline, file, o),
      ),
    );
  program
    .command("eval")
    .description(
      "run a pipeline over a golden set (row inputs and known values) in a shadow table of " +
        "Gleaner's own, then report per column coverage, precision, recall, calibration (ECE), " +
        "cost and latency; with calibrate: true, store the confidence mapping learnt",
    )
    .argument("<pipeline>", "the pipeline name")
    .addOption(configOption())
    .option("--golden <file.csv|table>", "the golden set (default: pipelines.<p>.eval.golden)")
    .option("--limit <n>", "only the first N rows of the golden set")
    .option("--against <other.yaml>", "also run that config's pipeline on the same rows; compare")
    .option(
      "--fail-below <figures>",
      "exit 1 when a figure is below, e.g. precision=0.9,recall=0.8,city.coverage=0.95",
    )
    .option("--timeout <seconds>", "give up waiting for rows after this long")
    .option("--json", "print JSON")
    .action(
      wrap(async (pipeline: string, o: import("./commands/eval-command.ts").EvalOptions) =>
        (await commands.eval()).evalCommand(pipeline, o),
      ),
    );
  program
    .command("doctor")
    .description("check the database, every LLM backend and the browser, and say what to fix")
    .addOption(configOption())
    .action(wrap(async (o: { config: string }) => (await commands.doctor()).doctorCommand(o)));
  return program;
}

export async function main(argv: string[]): Promise<number> {
  guardStandardStreams();
  let code = 0;
  const program = buildProgram((c) => (code = c));
  try {
    await program.parseAsync(argv);
    return code;
  } catch (error) {
    if (error instanceof CommanderError) {
      // --help and --version exit 0; everything else commander rejects is bad usage.
      return error.exitCode === 0 ? 0 : EXIT_USAGE;
    }
    if (error instanceof ConfigError || error instanceof UsageError) {
      console.error(`gleaner: ${error.message}`);
      return EXIT_USAGE;
    }
    if (error instanceof TableContractError || error instanceof NotMigratedError) {
      console.error(`gleaner: ${error.message}`);
      return EXIT_FAILURE;
    }
    // No config here to know its secrets; the database URL's credentials are known all the same.
    const secrets = urlCredentials(process.env.DATABASE_URL ?? "");
    console.error(`gleaner: ${maskSecrets(describe(error), secrets)}`);
    return EXIT_FAILURE;
  }
}

function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const parts = [error.message];
  for (let c = error.cause; c instanceof Error; c = c.cause) parts.push(`caused by: ${c.message}`);
  if (process.env.GLEANER_DEBUG) parts.push(error.stack ?? "");
  return parts.join("\n  ");
}
