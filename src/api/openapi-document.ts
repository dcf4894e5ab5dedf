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

const pipelineName = { name: "name", in: "path", required: true, schema: { type: "string" } };
const rowKey = { name: "key", in: "path", required: true, schema: { type: "string" } };

/** What every /v1 route may answer before it runs (see the guards in api-router.ts). */
const guarded = {
  "400": {
    description: "a path with `..`, an encoded `/` or malformed percent-encoding",
    content: json(error),
  },
  "401": {
    description: "no or wrong bearer token, or (no api.tokens) a client not on loopback",
    content: json(error),
  },
  "421": {
    description: "with no api.tokens: the Host header is not a loopback name (DNS rebinding)",
    content: json(error),
  },
};
/** What a state-changing route also answers (cross-site request forgery). */
const changing = {
  ...guarded,
  "403": {
    description: "a browser sent it for another site (Origin or Sec-Fetch-Site)",
    content: json(error),
  },
  "415": {
    description: "a content type an HTML form can send (form-urlencoded, multipart, text/plain)",
    content: json(error),
  },
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
          ...guarded,
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
          ...changing,
          "201": { description: "job created", content: json(progress) },
          "400": {
            description:
              "invalid rows (naming the row or CSV line and the column), a CSV header named twice, a number that is not finite, a body that is not UTF-8",
            content: json(error),
          },
          "404": { description: "unknown pipeline", content: json(error) },
          "413": {
            description: "body or rows over the limits; the connection is closed",
            content: json(error),
          },
          "415": {
            description: "not application/json or text/csv",
            content: json(error),
          },
        },
      },
    },
    "/v1/jobs/{id}": {
      get: {
        summary: "A job's progress: totals, percent, rows/s, when it started and completed, ETA",
        parameters: [jobId],
        responses: {
          ...guarded,
          "200": { description: "progress", content: json(progress) },
          "404": { description: "no such job", content: json(error) },
        },
      },
      delete: {
        summary:
          "Delete the job's rows that are not done from the pipeline's table (all of them with rows=all); a worker holding one of them cannot write it back. With rows=all, or when no row is left, the job goes too",
        parameters: [
          jobId,
          {
            name: "rows",
            in: "query",
            schema: { type: "string", enum: ["unfinished", "all"], default: "unfinished" },
          },
        ],
        responses: {
          ...changing,
          "200": {
            description: "the rows deleted, and the job as it stands (null when it was deleted)",
            content: json({
              type: "object",
              required: ["deleted_rows", "job"],
              properties: {
                deleted_rows: { type: "integer" },
                job: { oneOf: [progress, { type: "null" }] },
              },
            }),
          },
          "400": { description: "rows is neither unfinished nor all", content: json(error) },
          "404": { description: "no such job", content: json(error) },
        },
      },
    },
    "/v1/jobs/{id}/result": {
      get: {
        summary:
          "Values, confidence, sources and errors of every row. In CSV, a cell that would start a spreadsheet formula (=, +, -, @, tab, CR; plain numbers aside) starts with ' instead",
        parameters: [
          jobId,
          { name: "format", in: "query", schema: { type: "string", enum: ["json", "csv"] } },
        ],
        responses: {
          ...guarded,
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
          ...changing,
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
          ...changing,
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
          ...guarded,
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
          ...guarded,
          "200": {
            description: "reports",
            content: json({ type: "array", items: { type: "object" } }),
          },
        },
      },
    },
    "/v1/processes": {
      get: {
        summary:
          "The live worker processes on every host: id, host, pid, version, jobs in flight, started_at, heartbeat age",
        responses: {
          ...guarded,
          "200": {
            description: "processes",
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
          ...guarded,
          "200": { description: "report", content: json({ type: "object" }) },
          "404": { description: "no such pipeline", content: json(error) },
        },
      },
    },
    "/v1/pipelines/{name}/rows": {
      get: {
        summary:
          "One page of the pipeline's rows in key order (keyset paging: pass the previous page's `next` as `after`), with inputs, outputs, their provenance and the outputs waiting for review",
        parameters: [
          pipelineName,
          { name: "after", in: "query", schema: { type: "string" } },
          { name: "limit", in: "query", schema: { type: "integer", minimum: 1, maximum: 500 } },
          {
            name: "status",
            in: "query",
            schema: {
              type: "string",
              enum: ["pending", "queued", "running", "done", "failed", "exhausted"],
            },
          },
          {
            name: "null",
            in: "query",
            description: "an input or output that must be NULL",
            schema: { type: "string" },
          },
          {
            name: "below",
            in: "query",
            description: "the row's confidence is below this",
            schema: { type: "number", minimum: 0, maximum: 1 },
          },
          {
            name: "review",
            in: "query",
            description: "1: only rows with a value below review_below that no one reviewed",
            schema: { type: "string", enum: ["1", "true"] },
          },
        ],
        responses: {
          ...guarded,
          "200": {
            description: "{rows, next, inputs, outputs, review_below}",
            content: json({ type: "object" }),
          },
          "400": {
            description: "a filter or `after` that does not fit the pipeline",
            content: json(error),
          },
          "404": { description: "no such pipeline", content: json(error) },
        },
      },
    },
    "/v1/pipelines/{name}/rows/{key}": {
      get: {
        summary:
          "One row: inputs, outputs, provenance, and what each stage answered (no research data)",
        parameters: [pipelineName, rowKey],
        responses: {
          ...guarded,
          "200": { description: "row", content: json({ type: "object" }) },
          "404": { description: "no such pipeline or row", content: json(error) },
        },
      },
    },
    "/v1/pipelines/{name}/rows/{key}/review": {
      post: {
        summary:
          "Approve, reject or edit one value (as <schema>.review): approved and edited values are locked (origin human) and never overwritten; a rejected one becomes NULL with reason `rejected` and is not asked again until an input changes",
        parameters: [pipelineName, rowKey],
        requestBody: {
          required: true,
          content: json({
            type: "object",
            required: ["column", "action"],
            properties: {
              column: { type: "string" },
              action: { type: "string", enum: ["approve", "reject", "edit"] },
              value: { description: "edit only: the new value, converted to the column's type" },
              by: { type: "string", description: "who reviewed, kept in the provenance" },
            },
          }),
        },
        responses: {
          ...changing,
          "200": {
            description: "{pipeline, key, column, provenance}",
            content: json({ type: "object" }),
          },
          "400": {
            description:
              "not an output, an unknown action, a value of the wrong type, nothing to approve",
            content: json(error),
          },
          "404": { description: "no such pipeline or row", content: json(error) },
        },
      },
    },
    "/v1/pipelines/{name}/rows/{key}/reprocess": {
      post: {
        summary:
          "Make one row pending again (as `gleaner reprocess`); found values are kept, reviewed ones locked",
        parameters: [pipelineName, rowKey],
        responses: {
          ...changing,
          "200": { description: "{reprocessed: 1}", content: json({ type: "object" }) },
          "404": { description: "no such pipeline or row", content: json(error) },
        },
      },
    },
    "/v1/pipelines/{name}/row-events": {
      get: {
        summary:
          "Server-sent events for the rows a page shows: `ready` once, then `rows` (their new state) whenever any of them changes",
        parameters: [
          pipelineName,
          {
            name: "key",
            in: "query",
            description:
              "a row's key, repeated once per row (a key may hold a comma); with keys, at most 500 in all",
            schema: { type: "array", items: { type: "string" } },
            style: "form",
            explode: true,
          },
          {
            name: "keys",
            in: "query",
            description: "comma-separated keys (for keys without a comma)",
            schema: { type: "string" },
          },
        ],
        responses: {
          ...guarded,
          "200": {
            description: "event stream",
            content: { "text/event-stream": { schema: { type: "string" } } },
          },
          "404": { description: "no such pipeline", content: json(error) },
        },
      },
    },
    "/v1/review-queue": {
      get: {
        summary:
          "Values waiting for review (<schema>.review_queue): below their pipeline's review_below, not reviewed yet, with their evidence",
        parameters: [
          { name: "pipeline", in: "query", schema: { type: "string" } },
          { name: "limit", in: "query", schema: { type: "integer", minimum: 1, maximum: 500 } },
        ],
        responses: {
          ...guarded,
          "200": {
            description: "entries",
            content: json({ type: "array", items: { type: "object" } }),
          },
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
        responses: { "200": { description: "HTML" }, "421": guarded["421"] },
      },
    },
    "/openapi.json": {
      get: {
        summary: "This document",
        security: [],
        responses: { "200": { description: "OpenAPI 3.1" }, "421": guarded["421"] },
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
          started_at: { type: ["string", "null"], format: "date-time" },
          completed_at: { type: ["string", "null"], format: "date-time" },
          duration_seconds: { type: ["number", "null"] },
          total: { type: "integer" },
          done: { type: "integer" },
          failed: { type: "integer" },
          exhausted: { type: "integer" },
          pending: { type: "integer" },
          percent: { type: "number" },
          rows_per_second: { type: ["number", "null"] },
          eta_seconds: { type: ["number", "null"] },
          eta_at: { type: ["string", "null"], format: "date-time" },
          finished: { type: "boolean" },
        },
      },
    },
  },
} as const;
