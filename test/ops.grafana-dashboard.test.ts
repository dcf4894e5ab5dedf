import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { ROOT, unknownLabelMatchers, unknownMetrics } from "./support/ops-contract.ts";

/**
 * ops/grafana: the dashboard is a valid Grafana dashboard whose every query names metrics
 * Gleaner exports, it covers what the issue asks to see, and the provisioning files point
 * Grafana at it and at Prometheus.
 */

interface Datasource {
  type?: string;
  uid?: string;
}
interface Target {
  refId?: string;
  expr?: string;
  datasource?: Datasource;
  format?: string;
}
interface Panel {
  id?: number;
  type?: string;
  title?: string;
  gridPos?: { x: number; y: number; w: number; h: number };
  datasource?: Datasource;
  targets?: Target[];
  collapsed?: boolean;
  panels?: Panel[];
}
interface Dashboard {
  uid?: string;
  title?: string;
  schemaVersion?: number;
  panels?: Panel[];
  templating?: {
    list?: {
      name: string;
      type: string;
      datasource?: Datasource;
      definition?: string;
      query?: string | { query?: string };
      includeAll?: boolean;
    }[];
  };
}
interface DatasourceProvisioning {
  apiVersion: number;
  datasources: { name: string; uid: string; type: string; url: string; isDefault?: boolean }[];
}
interface DashboardProvisioning {
  apiVersion: number;
  providers: { name: string; type: string; options: { path: string } }[];
}
interface Compose {
  services: Record<string, { volumes?: string[] }>;
}

const GRAFANA = join(ROOT, "ops/grafana");
const DASHBOARD_FILE = join(GRAFANA, "dashboards/gleaner.json");
const DATASOURCE_UID = "prometheus";

const dashboard = JSON.parse(readFileSync(DASHBOARD_FILE, "utf8")) as Dashboard;
/** Panels, and the panels inside collapsed rows. */
const allPanels = (dashboard.panels ?? []).flatMap((p) => [p, ...(p.panels ?? [])]);
const queryPanels = allPanels.filter((p) => p.type !== "row");
const exprs = queryPanels.flatMap((p) => (p.targets ?? []).map((t) => t.expr ?? ""));
const readYaml = <T>(path: string): T => parse(readFileSync(path, "utf8")) as T;

describe("ops/grafana/dashboards/gleaner.json", () => {
  it("is a dashboard with a uid, a title and a current schema", () => {
    expect(dashboard.uid).toMatch(/^[a-zA-Z0-9_-]{1,40}$/);
    expect(dashboard.title).toBe("Gleaner");
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(38);
    expect(queryPanels.length).toBeGreaterThan(10);
  });

  it("gives every panel a unique id, a type, a title and a place on the grid", () => {
    const ids = allPanels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const panel of allPanels) {
      const name = `panel ${panel.id} ${panel.title}`;
      expect(Number.isInteger(panel.id), name).toBe(true);
      expect(panel.type, name).toMatch(/^[a-z-]+$/);
      expect(panel.title, name).toMatch(/\S/);
      const { x, y, w, h } = panel.gridPos ?? { x: -1, y: -1, w: 0, h: 0 };
      for (const n of [x, y, w, h]) expect(Number.isInteger(n) && n >= 0, name).toBe(true);
      expect(w > 0 && h > 0 && x + w <= 24, name).toBe(true);
    }
  });

  it("lays the panels out without overlaps", () => {
    const cells = new Map<string, string>();
    for (const panel of dashboard.panels ?? []) {
      const { x, y, w, h } = panel.gridPos ?? { x: 0, y: 0, w: 0, h: 0 };
      for (let i = x; i < x + w; i++) {
        for (let j = y; j < y + h; j++) {
          const other = cells.get(`${i},${j}`);
          expect(other, `${panel.title} overlaps ${other}`).toBeUndefined();
          cells.set(`${i},${j}`, panel.title ?? "");
        }
      }
    }
  });

  it("queries the provisioned Prometheus in every panel, with at least one expression", () => {
    for (const panel of queryPanels) {
      const name = `panel ${panel.id} ${panel.title}`;
      expect(panel.datasource, name).toEqual({ type: "prometheus", uid: DATASOURCE_UID });
      expect(panel.targets?.length, name).toBeGreaterThan(0);
      const refIds = (panel.targets ?? []).map((t) => t.refId);
      expect(new Set(refIds).size, name).toBe(refIds.length);
      for (const target of panel.targets ?? []) {
        expect(target.refId, name).toMatch(/\S/);
        expect(target.expr, name).toMatch(/\S/);
        if (target.datasource) expect(target.datasource.uid, name).toBe(DATASOURCE_UID);
      }
    }
  });

  it("names only metrics Gleaner exports", async () => {
    expect(await unknownMetrics(exprs)).toEqual([]);
  });

  it("filters metrics only on labels they have", () => {
    expect(exprs.flatMap((e) => unknownLabelMatchers(e))).toEqual([]);
  });

  it("has a pipeline variable from label_values(gleaner_rows, pipeline)", () => {
    const variable = dashboard.templating?.list?.find((v) => v.name === "pipeline");
    expect(variable?.type).toBe("query");
    expect(variable?.datasource?.uid).toBe(DATASOURCE_UID);
    const query = typeof variable?.query === "string" ? variable.query : variable?.query?.query;
    expect(query).toBe("label_values(gleaner_rows, pipeline)");
    expect(variable?.includeAll).toBe(true);
    expect(exprs.some((e) => e.includes('pipeline=~"$pipeline"'))).toBe(true);
  });

  it("covers completeness, backlog, throughput, failures, latency, confidence, cost, concurrency, queue, sweeps and workers", () => {
    const uses = (metric: string) => exprs.some((e) => e.includes(metric));
    for (const metric of [
      "gleaner_completeness_ratio",
      "gleaner_backlog_rows",
      "gleaner_rows_settled_total",
      "gleaner_stage_rows_total",
      "gleaner_row_latency_seconds_bucket",
      "gleaner_row_confidence_bucket",
      "gleaner_column_fill_ratio",
      "gleaner_llm_cost_usd_total",
      "gleaner_llm_tokens_total",
      "gleaner_concurrency_limit",
      "gleaner_calls_in_flight",
      "gleaner_queue_jobs",
      "gleaner_sweep_duration_seconds_bucket",
      "gleaner_workers_alive",
    ]) {
      expect(uses(metric), metric).toBe(true);
    }
    // Throughput and failure rate are rates of settled rows, failure rate by status.
    expect(exprs.some((e) => /rate\(gleaner_rows_settled_total\{[^}]*\}\[/.test(e))).toBe(true);
    expect(
      exprs.some((e) => /gleaner_rows_settled_total\{[^}]*status=~"failed\|exhausted"/.test(e)),
    ).toBe(true);
    // Top error classes.
    expect(
      exprs.some((e) =>
        /topk\(\d+, sum by \([^)]*error_class[^)]*\) \(.*gleaner_stage_rows_total\{[^}]*outcome="error"/.test(
          e,
        ),
      ),
    ).toBe(true);
    // Latency quantiles.
    expect(
      exprs.some((e) => /histogram_quantile\(0\.\d+, .*gleaner_row_latency_seconds_bucket/.test(e)),
    ).toBe(true);
    // Confidence distribution: a heatmap or bar gauge over the histogram's buckets.
    const confidence = queryPanels.filter((p) =>
      (p.targets ?? []).some((t) => t.expr?.includes("gleaner_row_confidence_bucket")),
    );
    expect(confidence.some((p) => p.type === "heatmap" || p.type === "bargauge")).toBe(true);
    for (const panel of confidence) {
      expect(panel.targets?.[0]?.format, panel.title).toBe("heatmap");
    }
  });
});

describe("ops/grafana/provisioning", () => {
  const datasources = readYaml<DatasourceProvisioning>(
    join(GRAFANA, "provisioning/datasources/prometheus.yml"),
  );
  const dashboards = readYaml<DashboardProvisioning>(
    join(GRAFANA, "provisioning/dashboards/gleaner.yml"),
  );
  const grafana = readYaml<Compose>(join(ROOT, "docker-compose.yml")).services.grafana;

  it("provisions Prometheus with the uid the dashboard uses", () => {
    expect(datasources.apiVersion).toBe(1);
    expect(datasources.datasources).toContainEqual(
      expect.objectContaining({
        uid: DATASOURCE_UID,
        type: "prometheus",
        url: "http://prometheus:9090",
      }),
    );
  });

  it("loads the dashboards folder, mounted there by docker-compose.yml", () => {
    expect(dashboards.apiVersion).toBe(1);
    const provider = dashboards.providers.find((p) => p.type === "file");
    expect(provider?.options.path).toBe("/var/lib/grafana/dashboards");
    expect(grafana?.volumes).toContain(`./ops/grafana/dashboards:${provider?.options.path}:ro`);
    expect(grafana?.volumes).toContain("./ops/grafana/provisioning:/etc/grafana/provisioning:ro");
  });
});
