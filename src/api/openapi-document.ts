/**
 * The OpenAPI description served at /openapi.json. test/api.router.test.ts checks that every
 * route here is answered by the router and every /v1 route of the router is described here.
 */
const error = { $ref: "#/components/schemas/Error" };
const progress = { $ref: "#/components/schemas/JobProgress" };
const json = (schema: unknown) => ({ "application/json": { schema } });
const jobId = {
  name: "id",
  in: "path",
  required: true,
  schema: { type: "string", format: "uuid" },
};

export const OPENAPI_DOCUMENT = {
  openapi: "3.1.0",
  info: {
    title: "Gleaner API",
    version: "1",
    description:
      "Submit rows for enrichment, track jobs, read results. Rows land in the pipeline's table and are processed by the same sweep as rows inserted with SQL.",
  },
  security: [{ bearer: [] }],
  paths: {
    "/v1/jobs": {
      get: {
        summary: "List recent jobs, newest first",
        responses: {
          "200": { description: "jobs", content: json({ type: "array", items: progress }) },
        },
      },
      post: {
        summary:
          "Submit rows: JSON {pipeline, rows}, or CSV (text/csv, ?pipeline=NAME, header = input columns)",
        parameters: [
          { name: "pipeline", in: "query", required: false, schema: { type: "string" } },
        ],
        requestBody: {
          required: true,
          content: {
            "application/json": {
              schema: {
                type: "object",
                required: ["rows"],
                description: "Either pipeline (a configured one) or request (an ad-hoc one).",
                properties: {
                  pipeline: { type: "string" },
                  request: {
                    type: "object",
                    required: ["inputs", "outputs"],
                    properties: {
                      inputs: { type: "array", items: { type: "string" } },
                      outputs: {
                        type: "object",
                        additionalProperties: {
                          type: "object",
                          required: ["type", "description"],
                          properties: { type: { type: "string" }, description: { type: "string" } },
                        },
                      },
                      search_context: { type: "string" },
                    },
                  },
                  rows: { type: "array", items: { type: "object" } },
                },
              },
            },
            "text/csv": { schema: { type: "string" } },
          },
        },
        responses: {
          "201": { description: "job created", content: json(progress) },
          "400": { description: "invalid rows", content: json(error) },
          "404": { description: "unknown pipeline", content: json(error) },
          "413": { description: "body or rows over the limits", content: json(error) },
        },
      },
    },
    "/v1/jobs/{id}": {
      get: {
        summary: "A job's progress: totals, percent, rows/s, ETA",
        parameters: [jobId],
        responses: {
          "200": { description: "progress", content: json(progress) },
          "404": { description: "no such job", content: json(error) },
        },
      },
    },
    "/v1/jobs/{id}/result": {
      get: {
        summary: "Values, confidence, sources and errors of every row",
        parameters: [
          jobId,
          { name: "format", in: "query", schema: { type: "string", enum: ["json", "csv"] } },
        ],
        responses: {
          "200": {
            description: "rows",
            content: {
              "application/json": { schema: { type: "object" } },
              "text/csv": { schema: { type: "string" } },
            },
          },
          "404": { description: "no such job", content: json(error) },
        },
      },
    },
    "/v1/jobs/{id}/cancel": {
      post: {
        summary: "Stop the job's unsettled rows (they become exhausted, marked cancelled)",
        parameters: [jobId],
        responses: {
          "200": { description: "progress", content: json(progress) },
          "404": { description: "no such job", content: json(error) },
        },
      },
    },
    "/v1/jobs/{id}/resume": {
      post: {
        summary: "Make the rows a cancel stopped pending again",
        parameters: [jobId],
        responses: {
          "200": { description: "progress", content: json(progress) },
          "404": { description: "no such job", content: json(error) },
        },
      },
    },
    "/v1/jobs/{id}/events": {
      get: {
        summary: "Server-sent events: `progress` every second, `finished` at the end",
        parameters: [jobId],
        responses: {
          "200": {
            description: "event stream",
            content: { "text/event-stream": { schema: { type: "string" } } },
          },
        },
      },
    },
    "/v1/pipelines": {
      get: {
        summary: "Every pipeline's report (as /v1/pipelines/{name}/report)",
        responses: {
          "200": {
            description: "reports",
            content: json({ type: "array", items: { type: "object" } }),
          },
        },
      },
    },
    "/v1/pipelines/{name}/report": {
      get: {
        summary: "Completeness, backlog, failures by class and the worst rows",
        parameters: [{ name: "name", in: "path", required: true, schema: { type: "string" } }],
        responses: {
          "200": { description: "report", content: json({ type: "object" }) },
          "404": { description: "no such pipeline", content: json(error) },
        },
      },
    },
    "/healthz": {
      get: {
        summary: "The process is up",
        security: [],
        responses: { "200": { description: "ok" } },
      },
    },
    "/readyz": {
      get: {
        summary: "The database answers and migrations are current",
        security: [],
        responses: { "200": { description: "ready" }, "503": { description: "not ready" } },
      },
    },
    "/metrics": {
      get: {
        summary: "Prometheus metrics",
        security: [],
        responses: { "200": { description: "metrics" } },
      },
    },
    "/": {
      get: {
        summary: "The status page (HTML)",
        security: [],
        responses: { "200": { description: "HTML" } },
      },
    },
    "/openapi.json": {
      get: {
        summary: "This document",
        security: [],
        responses: { "200": { description: "OpenAPI 3.1" } },
      },
    },
  },
  components: {
    securitySchemes: { bearer: { type: "http", scheme: "bearer" } },
    schemas: {
      Error: { type: "object", required: ["error"], properties: { error: { type: "string" } } },
      JobProgress: {
        type: "object",
        properties: {
          id: { type: "string", format: "uuid" },
          pipeline: { type: "string" },
          status: { type: "string", enum: ["active", "cancelled"] },
          created_at: { type: "string", format: "date-time" },
          total: { type: "integer" },
          done: { type: "integer" },
          failed: { type: "integer" },
          exhausted: { type: "integer" },
          pending: { type: "integer" },
          percent: { type: "number" },
          rows_per_second: { type: ["number", "null"] },
          eta_seconds: { type: ["number", "null"] },
          finished: { type: "boolean" },
        },
      },
    },
  },
} as const;
