import type { IncomingMessage, ServerResponse } from "node:http";
import { timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parse as parseCsv } from "csv-parse/sync";
import { stringify as toCsv } from "csv-stringify/sync";
import type { Runtime } from "../pipeline/runtime.ts";
import { pipelineReport } from "./pipeline-report.ts";
import { ApiError } from "./api-error.ts";
import { ApiJobsService } from "./api-jobs-service.ts";
import { OPENAPI_DOCUMENT } from "./openapi-document.ts";
import { readBody } from "./read-body.ts";

const STATUS_PAGE = readFileSync(
  fileURLToPath(new URL("./status-page/status-page.html", import.meta.url)),
  "utf8",
);

interface Context {
  req: IncomingMessage;
  res: ServerResponse;
  params: string[];
  query: URLSearchParams;
}

interface Route {
  method: "GET" | "POST";
  /** The path as the OpenAPI document writes it. */
  path: string;
  handle: (ctx: Context) => Promise<void>;
}

function pattern(path: string): RegExp {
  return new RegExp(`^${path.replace(/\{[^}]+\}/g, "([^/]+)")}$`);
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { "content-type": "application/json; charset=utf-8" });
  res.end(JSON.stringify(body));
}

export function isLoopback(address: string | undefined): boolean {
  return (
    address === "127.0.0.1" ||
    address === "::1" ||
    address === "::ffff:127.0.0.1" ||
    (address?.startsWith("127.") ?? false)
  );
}

/**
 * The REST API (/v1/*, /openapi.json) and the status page (/). Returns a handler that answers its own paths and
 * returns false for the others (metrics and health are served next to it).
 */
export function createApiRouter(runtime: Runtime, log: (m: string) => void) {
  const jobs = new ApiJobsService(runtime);
  const { tokens, maxBodyBytes } = runtime.config.api;

  const routes: Route[] = [
    {
      method: "GET",
      path: "/v1/jobs",
      handle: async ({ res, query }) => {
        const limit = Math.min(Math.max(Number(query.get("limit") ?? 100) || 100, 1), 1000);
        sendJson(res, 200, await jobs.list(limit));
      },
    },
    {
      method: "POST",
      path: "/v1/jobs",
      handle: async ({ req, res, query }) => {
        const type = (req.headers["content-type"] ?? "").split(";")[0]?.trim();
        const body = await readBody(req, maxBodyBytes);
        let pipeline: unknown;
        let rows: unknown;
        let request: unknown;
        if (type === "text/csv") {
          pipeline = query.get("pipeline");
          try {
            rows = parseCsv(body, { columns: true, skip_empty_lines: true, trim: true });
          } catch (error) {
            throw new ApiError(400, `CSV does not parse: ${(error as Error).message}`, {
              cause: error,
            });
          }
        } else if (type === "application/json") {
          let parsed: unknown;
          try {
            parsed = JSON.parse(body);
          } catch (error) {
            throw new ApiError(400, `body is not JSON: ${(error as Error).message}`, {
              cause: error,
            });
          }
          if (parsed === null || typeof parsed !== "object")
            throw new ApiError(400, 'body must be an object {"pipeline": ..., "rows": [...]}');
          const o = parsed as Record<string, unknown>;
          if ("request" in o && "pipeline" in o)
            throw new ApiError(400, 'give either "pipeline" or an ad-hoc "request", not both');
          pipeline = o.pipeline ?? query.get("pipeline");
          rows = o.rows;
          request = o.request;
        } else {
          throw new ApiError(
            415,
            "send application/json ({pipeline, rows}) or text/csv (?pipeline=NAME)",
          );
        }
        sendJson(res, 201, await jobs.create(pipeline, rows, request));
      },
    },
    {
      method: "GET",
      path: "/v1/jobs/{id}",
      handle: async ({ res, params }) => sendJson(res, 200, await jobs.get(params[0] as string)),
    },
    {
      method: "GET",
      path: "/v1/jobs/{id}/result",
      handle: async ({ res, params, query }) => {
        const { job, rows, pipeline } = await jobs.result(params[0] as string);
        const format = query.get("format") ?? "json";
        const outputs = pipeline.outputs.map((o) => o.name);
        const shaped = rows.map((r) => ({
          key: r.key,
          status: r.status,
          confidence: r.confidence,
          ...r.inputs,
          ...r.values,
          sources: Object.fromEntries(
            outputs.map((o) => [o, r.state?.columns?.[o]?.sources ?? []]),
          ),
          errors: r.state?.errors ?? [],
        }));
        if (format === "csv") {
          res.writeHead(200, { "content-type": "text/csv; charset=utf-8" });
          res.end(
            toCsv(
              shaped.map((r) => ({
                ...r,
                sources: JSON.stringify(r.sources),
                errors: r.errors.map((e) => `${e.class}: ${e.message}`).join(" | "),
              })),
              {
                header: true,
                columns: [
                  "key",
                  "status",
                  "confidence",
                  ...pipeline.inputs,
                  ...outputs,
                  "sources",
                  "errors",
                ],
              },
            ),
          );
          return;
        }
        if (format !== "json")
          throw new ApiError(400, `format must be json or csv, not "${format}"`);
        sendJson(res, 200, { job, rows: shaped });
      },
    },
    {
      method: "POST",
      path: "/v1/jobs/{id}/cancel",
      handle: async ({ res, params }) => sendJson(res, 200, await jobs.cancel(params[0] as string)),
    },
    {
      method: "POST",
      path: "/v1/jobs/{id}/resume",
      handle: async ({ res, params }) => sendJson(res, 200, await jobs.resume(params[0] as string)),
    },
    {
      method: "GET",
      path: "/v1/jobs/{id}/events",
      handle: async ({ req, res, params }) => {
        const id = params[0] as string;
        const first = await jobs.get(id);
        res.writeHead(200, {
          "content-type": "text/event-stream",
          "cache-control": "no-cache",
          connection: "keep-alive",
        });
        let closed = false;
        req.on("close", () => (closed = true));
        let progress = first;
        for (;;) {
          res.write(`event: progress\ndata: ${JSON.stringify(progress)}\n\n`);
          if (progress.finished || progress.status === "cancelled") {
            res.write(`event: finished\ndata: ${JSON.stringify(progress)}\n\n`);
            break;
          }
          await new Promise((r) => setTimeout(r, 1000));
          if (closed) break;
          progress = await jobs.get(id);
        }
        res.end();
      },
    },
    {
      method: "GET",
      path: "/v1/pipelines",
      handle: async ({ res }) => {
        const reports = [];
        for (const { pipeline } of runtime.pipelines.values())
          reports.push(await pipelineReport(runtime, pipeline));
        sendJson(res, 200, reports);
      },
    },
    {
      method: "GET",
      path: "/v1/pipelines/{name}/report",
      handle: async ({ res, params }) =>
        sendJson(res, 200, await pipelineReport(runtime, jobs.pipeline(params[0]))),
    },
  ];
  const compiled = routes.map((r) => ({ ...r, regex: pattern(r.path) }));

  const authorized = (req: IncomingMessage): boolean => {
    if (tokens.length === 0) return isLoopback(req.socket.remoteAddress);
    const header = req.headers.authorization ?? "";
    const given = Buffer.from(header.replace(/^Bearer\s+/i, ""));
    return tokens.some((t) => {
      const want = Buffer.from(t);
      return want.length === given.length && timingSafeEqual(want, given);
    });
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<boolean> => {
    const url = new URL(req.url ?? "/", "http://gleaner");
    if (url.pathname === "/openapi.json" && req.method === "GET") {
      sendJson(res, 200, OPENAPI_DOCUMENT);
      return true;
    }
    if (url.pathname === "/" && req.method === "GET") {
      // The page itself holds no data; it reads the API with the caller's own credentials.
      res.writeHead(200, {
        "content-type": "text/html; charset=utf-8",
        "cache-control": "no-cache",
      });
      res.end(STATUS_PAGE);
      return true;
    }
    if (!url.pathname.startsWith("/v1/")) return false;
    const matches = compiled.filter((r) => r.regex.test(url.pathname));
    const route = matches.find((r) => r.method === req.method);
    try {
      if (matches.length === 0)
        throw new ApiError(404, `no route ${url.pathname}; see /openapi.json`);
      if (!route) throw new ApiError(405, `${req.method} is not allowed on ${url.pathname}`);
      if (!authorized(req))
        throw new ApiError(
          401,
          tokens.length === 0
            ? "no api.tokens are configured, so the API answers loopback clients only"
            : "send Authorization: Bearer <token> with a token from api.tokens",
        );
      const params = (route.regex.exec(url.pathname) ?? []).slice(1).map(decodeURIComponent);
      await route.handle({ req, res, params, query: url.searchParams });
    } catch (error) {
      if (res.headersSent) {
        log(`api ${req.method} ${url.pathname} failed mid-response: ${(error as Error).message}`);
        res.end();
      } else if (error instanceof ApiError) {
        sendJson(res, error.status, { error: error.message });
      } else {
        log(`api ${req.method} ${url.pathname} failed: ${(error as Error).message}`);
        sendJson(res, 500, { error: "internal error; see the server log" });
      }
    }
    return true;
  };

  return { handle, routes: routes.map((r) => ({ method: r.method, path: r.path })) };
}
