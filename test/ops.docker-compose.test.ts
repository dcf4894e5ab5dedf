import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { findTool, ROOT, runInRoot } from "./support/ops-contract.ts";

/**
 * docker-compose.yml: valid for docker-compose, and postgres → gleaner → prometheus → grafana
 * come up in that order, each waiting for the previous one's healthcheck.
 */

interface Service {
  image?: string;
  build?: unknown;
  environment?: Record<string, string>;
  volumes?: string[];
  ports?: string[];
  healthcheck?: { test?: string | string[] };
  depends_on?: Record<string, { condition?: string }> | string[];
}
interface Compose {
  services: Record<string, Service>;
}

const compose = parse(readFileSync(join(ROOT, "docker-compose.yml"), "utf8")) as Compose;
const ORDER = ["postgres", "gleaner", "prometheus", "grafana"];
const healthcheckText = (s: Service | undefined) => [s?.healthcheck?.test ?? []].flat().join(" ");

const dockerCompose = findTool("docker-compose", "docker-compose");

describe.skipIf(dockerCompose.skip)("docker-compose config", () => {
  it("passes `docker-compose config -q` with OPENAI_API_KEY empty", () => {
    expect(dockerCompose.found, dockerCompose.missingMessage).toBe(true);
    const run = runInRoot("docker-compose", ["-f", "docker-compose.yml", "config", "-q"], {
      ...process.env,
      OPENAI_API_KEY: "",
    });
    expect(run.status, run.output).toBe(0);
  });
});

describe("docker-compose.yml", () => {
  it("has postgres, gleaner, prometheus and grafana, each with a healthcheck", () => {
    for (const name of ORDER) {
      const service = compose.services[name];
      expect(service, name).toBeDefined();
      expect(healthcheckText(service), name).not.toBe("");
    }
  });

  it("starts each service once the previous one is healthy: postgres → gleaner → prometheus → grafana", () => {
    expect(compose.services.postgres?.depends_on).toBeUndefined();
    for (let i = 1; i < ORDER.length; i++) {
      const name = ORDER[i] ?? "";
      const previous = ORDER[i - 1] ?? "";
      expect(compose.services[name]?.depends_on, name).toEqual({
        [previous]: { condition: "service_healthy" },
      });
    }
  });

  it("publishes ports on 127.0.0.1 only", () => {
    const ports = Object.entries(compose.services).flatMap(([name, s]) =>
      (s.ports ?? []).map((p) => `${name} ${p}`),
    );
    expect(ports).toEqual([
      "gleaner 127.0.0.1:9464:9464",
      "prometheus 127.0.0.1:9090:9090",
      "grafana 127.0.0.1:3000:3000",
    ]);
  });

  it("runs Prometheus on ops/prometheus, checked on /-/healthy", () => {
    const prometheus = compose.services.prometheus;
    expect(prometheus?.image).toMatch(/^prom\/prometheus:/);
    expect(prometheus?.volumes).toContain("./ops/prometheus:/etc/prometheus:ro");
    expect(healthcheckText(prometheus)).toContain("http://127.0.0.1:9090/-/healthy");
  });

  it("runs Grafana provisioned from ops/grafana, checked on /api/health, with a default admin password", () => {
    const grafana = compose.services.grafana;
    expect(grafana?.image).toMatch(/^grafana\/grafana:/);
    expect(grafana?.volumes).toEqual(
      expect.arrayContaining([
        "./ops/grafana/provisioning:/etc/grafana/provisioning:ro",
        "./ops/grafana/dashboards:/var/lib/grafana/dashboards:ro",
      ]),
    );
    expect(healthcheckText(grafana)).toContain("http://127.0.0.1:3000/api/health");
    expect(grafana?.environment?.GF_SECURITY_ADMIN_PASSWORD).toMatch(/^\$\{[A-Z_]+:-.+\}$/);
    expect(grafana?.environment?.GF_AUTH_ANONYMOUS_ORG_ROLE).toBe("Viewer");
  });
});
