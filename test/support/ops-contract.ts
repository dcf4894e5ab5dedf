import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { collectDefaultMetrics, Registry } from "prom-client";
import {
  METRICS,
  PROCESS_METRICS_PREFIX,
  type MetricSpec,
} from "../../src/metrics/metric-catalogue.ts";

/**
 * Shared by the test/ops.*.test.ts files: the metric contract (src/metrics/metric-catalogue.ts)
 * applied to PromQL written in ops/, and the rule for external tools (promtool, docker-compose).
 */

export const ROOT = fileURLToPath(new URL("../..", import.meta.url));

const SPECS: readonly MetricSpec[] = METRICS;
const BY_NAME = new Map(SPECS.map((m) => [m.name, m]));
const HISTOGRAM_SUFFIX = /^(.+)_(bucket|sum|count)$/;
/** Labels Prometheus adds to every scraped series. */
const TARGET_LABELS = ["job", "instance"];

/** The default process metrics prom-client exports under Gleaner's prefix, suffixes included. */
async function processMetricNames(): Promise<Set<string>> {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: PROCESS_METRICS_PREFIX });
  const names = new Set<string>();
  for (const metric of await registry.getMetricsAsJSON()) {
    names.add(metric.name);
    if (String(metric.type) === "histogram") {
      for (const suffix of ["_bucket", "_sum", "_count"]) names.add(metric.name + suffix);
    }
  }
  registry.clear();
  return names;
}

let processNames: Promise<Set<string>> | undefined;

/** Every `gleaner_…` token of a PromQL expression. */
export function metricTokens(expr: string): string[] {
  return [...new Set(expr.match(/gleaner_[a-z0-9_]+/g) ?? [])];
}

/**
 * The catalogue entry a series name belongs to: the metric itself, or a histogram's
 * `_bucket`/`_sum`/`_count` series (only for histograms: `gleaner_rows_count` is no metric).
 */
export function specFor(
  token: string,
): { spec: MetricSpec; series: "plain" | "bucket" | "other" } | undefined {
  const direct = BY_NAME.get(token);
  if (direct) return { spec: direct, series: "plain" };
  const match = HISTOGRAM_SUFFIX.exec(token);
  const base = match?.[1] ? BY_NAME.get(match[1]) : undefined;
  if (base?.type === "histogram") {
    return { spec: base, series: match?.[2] === "bucket" ? "bucket" : "other" };
  }
  return undefined;
}

/**
 * The `gleaner_…` names in the expressions that Gleaner does not export: not in METRICS (with
 * histogram suffixes) and not one of the default process metrics under PROCESS_METRICS_PREFIX.
 */
export async function unknownMetrics(exprs: readonly string[]): Promise<string[]> {
  processNames ??= processMetricNames();
  const known = await processNames;
  const unknown = new Set<string>();
  for (const expr of exprs) {
    for (const token of metricTokens(expr)) {
      if (specFor(token)) continue;
      if (token.startsWith(PROCESS_METRICS_PREFIX) && known.has(token)) continue;
      unknown.add(token);
    }
  }
  return [...unknown].sort();
}

/**
 * Label matchers written on a catalogued metric (`gleaner_x{label="…"}`) that name a label the
 * metric does not have: such a selector matches nothing, whatever /metrics exports.
 */
export function unknownLabelMatchers(expr: string): string[] {
  const problems: string[] = [];
  for (const selector of expr.matchAll(/(gleaner_[a-z0-9_]+)\s*\{([^}]*)\}/g)) {
    const [, token = "", matchers = ""] = selector;
    const found = specFor(token);
    if (!found) continue;
    const allowed = new Set<string>([...found.spec.labels, ...TARGET_LABELS]);
    if (found.series === "bucket") allowed.add("le");
    for (const matcher of matchers.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)/g)) {
      const label = matcher[1] ?? "";
      if (!allowed.has(label)) problems.push(`${token}{${label}}`);
    }
  }
  return problems;
}

export interface Tool {
  command: string;
  found: boolean;
  /** Missing outside CI: the tests that need it are skipped, with a message. */
  skip: boolean;
  /** Why it is needed and how to install it. */
  missingMessage: string;
}

/** Finds an external command. Missing: the tests skip locally, and fail when CI is set. */
export function findTool(command: string, aptPackage: string): Tool {
  const found = spawnSync("sh", ["-c", `command -v ${command}`], { stdio: "ignore" }).status === 0;
  const missingMessage =
    `${command} is not installed: install it with \`apt-get install ${aptPackage}\`` +
    (process.env.CI ? " (required in CI)" : "; skipping the tests that run it");
  const skip = !found && !process.env.CI;
  if (skip) console.warn(missingMessage);
  return { command, found, skip, missingMessage };
}

export interface RunResult {
  status: number | null;
  output: string;
}

/** Runs a command in the repository root and returns its exit status and combined output. */
export function runInRoot(
  command: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): RunResult {
  const result = spawnSync(command, args, { cwd: ROOT, env, encoding: "utf8", timeout: 60_000 });
  const error = result.error ? `\n${result.error.message}` : "";
  return { status: result.status, output: `${result.stdout ?? ""}${result.stderr ?? ""}${error}` };
}
