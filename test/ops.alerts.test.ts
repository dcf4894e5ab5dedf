import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import {
  findTool,
  ROOT,
  runInRoot,
  unknownLabelMatchers,
  unknownMetrics,
} from "./support/ops-contract.ts";

/**
 * ops/prometheus: the alert rules check and pass their promtool unit tests, every rule has a
 * firing and a quiet case there, and every metric they name is one Gleaner exports.
 */

interface Rule {
  alert?: string;
  record?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
interface RuleFile {
  groups: { name: string; rules: Rule[] }[];
}
interface RuleTestFile {
  rule_files: string[];
  tests: {
    name: string;
    alert_rule_test?: { alertname: string; eval_time: string; exp_alerts?: unknown[] }[];
  }[];
}
interface PrometheusConfig {
  global?: { scrape_interval?: string };
  rule_files: string[];
  scrape_configs: {
    job_name: string;
    scrape_interval?: string;
    metrics_path?: string;
    static_configs: { targets: string[] }[];
  }[];
}

const DIR = join(ROOT, "ops/prometheus");
const readYaml = <T>(file: string): T => parse(readFileSync(join(DIR, file), "utf8")) as T;
const rules = readYaml<RuleFile>("alerts.yml").groups.flatMap((g) => g.rules);
const alerts = rules.filter((r): r is Rule & { alert: string } => typeof r.alert === "string");

const promtool = findTool("promtool", "prometheus");

describe.skipIf(promtool.skip)("promtool", () => {
  it("checks the rules", () => {
    expect(promtool.found, promtool.missingMessage).toBe(true);
    const run = runInRoot("promtool", ["check", "rules", "ops/prometheus/alerts.yml"]);
    expect(run.status, run.output).toBe(0);
    expect(run.output).toContain(`SUCCESS: ${rules.length} rules found`);
  });

  it("passes the rules' unit tests", () => {
    expect(promtool.found, promtool.missingMessage).toBe(true);
    const run = runInRoot("promtool", ["test", "rules", "ops/prometheus/alerts.test.yml"]);
    expect(run.status, run.output).toBe(0);
    expect(run.output).toContain("SUCCESS");
  });

  it("checks prometheus.yml and the rule files it loads", () => {
    expect(promtool.found, promtool.missingMessage).toBe(true);
    const run = runInRoot("promtool", ["check", "config", "ops/prometheus/prometheus.yml"]);
    expect(run.status, run.output).toBe(0);
  });
});

describe("alerts.yml", () => {
  it("names only metrics Gleaner exports", async () => {
    expect(await unknownMetrics(rules.map((r) => r.expr))).toEqual([]);
  });

  it("filters metrics only on labels they have", () => {
    expect(rules.flatMap((r) => unknownLabelMatchers(r.expr))).toEqual([]);
  });

  it("has the rules the issue asks for", () => {
    const expected: Record<string, { severity: string; expr: RegExp }> = {
      GleanerCompletenessLow: { severity: "warning", expr: /gleaner_completeness_ratio.*< 0\.85/s },
      GleanerCompletenessCritical: {
        severity: "critical",
        expr: /gleaner_completeness_ratio.*< 0\.70?/s,
      },
      GleanerConfidenceLow: {
        severity: "warning",
        expr: /gleaner_row_confidence_sum\[1h\].*gleaner_row_confidence_count\[1h\].*< 0\.8/s,
      },
      GleanerConfidenceCritical: {
        severity: "critical",
        expr: /gleaner_row_confidence_sum\[1h\].*gleaner_row_confidence_count\[1h\].*< 0\.6/s,
      },
      GleanerBacklogHigh: { severity: "warning", expr: /gleaner_backlog_rows.*> 1000/s },
      GleanerFailureRateHigh: {
        severity: "critical",
        expr: /status=~"failed\|exhausted"\}\[15m\].*gleaner_rows_settled_total\[15m\].*> 0\.2/s,
      },
      GleanerNoProgress: {
        severity: "critical",
        expr: /delta\(gleaner_backlog_rows\[15m\]\).*increase\(gleaner_rows_settled_total\[15m\]\)/s,
      },
      GleanerWorkersMissing: {
        severity: "critical",
        expr: /gleaner_workers_alive\) == 0 or absent\(gleaner_workers_alive\)/,
      },
      GleanerBudgetNearCap: {
        severity: "warning",
        expr: /gleaner_budget_spent_usd\)\s*\/ max by \(pipeline, window\) \(gleaner_budget_limit_usd\) >= 0\.8/,
      },
      GleanerValuesStale: {
        severity: "warning",
        expr: /max by \(pipeline, column\) \(gleaner_value_age_seconds\)\s*\/ max by \(pipeline, column\) \(gleaner_value_ttl_seconds\) > 1\.1/,
      },
      GleanerLlmCostOverBudget: {
        severity: "warning",
        expr: /rate\(gleaner_llm_cost_usd_total\[1h\]\)\) \* 3600\s*> on \(\) max\(gleaner_llm_budget_usd_per_hour\)/,
      },
    };
    expect(alerts.map((a) => a.alert).sort()).toEqual(Object.keys(expected).sort());
    for (const alert of alerts) {
      const want = expected[alert.alert];
      expect(alert.labels?.severity, alert.alert).toBe(want?.severity);
      expect(alert.expr, alert.alert).toMatch(want?.expr ?? /^$/);
    }
  });

  it("gives every rule a duration, a severity and annotations naming the pipeline and a runbook", () => {
    for (const alert of alerts) {
      expect(alert.for, alert.alert).toMatch(/^\d+[smh]$/);
      expect(["warning", "critical"], alert.alert).toContain(alert.labels?.severity);
      const { summary = "", description = "" } = alert.annotations ?? {};
      expect(summary, alert.alert).not.toBe("");
      expect(description, alert.alert).toContain("Runbook:");
      // Rules kept per pipeline say which one; the others say that every pipeline is hit.
      if (/by \(pipeline\b/.test(alert.expr)) {
        expect(summary, alert.alert).toContain("{{ $labels.pipeline }}");
        expect(description, alert.alert).toContain("{{ $labels.pipeline }}");
      } else {
        expect(`${summary} ${description}`, alert.alert).toMatch(/every pipeline/);
      }
    }
  });
});

describe("alerts.test.yml", () => {
  const testFile = readYaml<RuleTestFile>("alerts.test.yml");

  it("loads alerts.yml", () => {
    expect(testFile.rule_files).toEqual(["alerts.yml"]);
  });

  it("has, for every rule, a case where it fires and one where it does not", () => {
    const cases = testFile.tests.flatMap((t) => t.alert_rule_test ?? []);
    for (const alert of alerts) {
      const mine = cases.filter((c) => c.alertname === alert.alert);
      expect(
        mine.some((c) => (c.exp_alerts ?? []).length > 0),
        `${alert.alert} fires`,
      ).toBe(true);
      expect(
        mine.some((c) => (c.exp_alerts ?? []).length === 0),
        `${alert.alert} stays quiet`,
      ).toBe(true);
    }
    const names = new Set(alerts.map((a) => a.alert));
    expect(cases.filter((c) => !names.has(c.alertname)).map((c) => c.alertname)).toEqual([]);
  });
});

describe("prometheus.yml", () => {
  const config = readYaml<PrometheusConfig>("prometheus.yml");

  it("scrapes gleaner:9464 every 15 s and loads alerts.yml", () => {
    expect(config.rule_files).toContain("alerts.yml");
    const job = config.scrape_configs.find((c) => c.job_name === "gleaner");
    expect(job?.static_configs.flatMap((s) => s.targets)).toEqual(["gleaner:9464"]);
    expect(job?.scrape_interval ?? config.global?.scrape_interval).toBe("15s");
    expect(job?.metrics_path ?? "/metrics").toBe("/metrics");
  });
});
