import { parseJsonObject } from "./read-json-object.ts";
import type { IncomingMessage, ServerResponse } from "node:http";
import { timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { stringify as toCsv } from "csv-stringify/sync";
import { coerceError } from "../core/coerce-error.ts";
import { closeAfterResponse } from "../http/close-after-response.ts";
import { checkRequestPath } from "../http/request-path.ts";
import type { Runtime } from "../pipeline/runtime.ts";
import { pipelineReport } from "./pipeline-report.ts";
import { ApiError } from "./api-error.ts";
import { ApiJobsService } from "./api-jobs-service.ts";
import { OPENAPI_DOCUMENT } from "./openapi-document.ts";
import { neutraliseFormula } from "./csv-cells.ts";
import { parseCsvRows } from "./parse-csv-rows.ts";
import { readBody } from "./read-body.ts";
import {
  crossSiteRefusal,
  foreignHostRefusal,
  formContentRefusal,
  isLoopback,
  mediaType,
} from "./request-guards.ts";
import { csvRowLabel } from "./row-label.ts";
import { readLiveProcesses } from "../worker/live-processes.ts";
import { sendJson, type Route } from "./api-route.ts";
import { rowRoutes } from "./row-routes.ts";

export { isLoopback };

const STATUS_PAGE = readFileSync(
  fileURLToPath(new URL("./status-page/status-page.html", import.meta.url)),
  "utf8",
);

function pattern(path: string): RegExp {
  return new RegExp(`^${path.replace(/\{[^}]+\}/g, "([^/]+)")}$`);
}

/**
 * The REST API (/v1/*, /openapi.json) and the status page (/). Returns a handler that answers its
 * own paths and returns false for the others (metrics and health are served next to it).
 *
 * Guards, in order: a path with `..` or bad encoding is a 400; with no api.tokens, a Host that is
 * not a loopback name is a 421 (DNS rebinding) and a client not on loopback a 401; a
 * state-changing request a browser sent for another site is a 403, and one with a content type
 * an HTML form can send a 415 (cross-site request forgery).
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
        const type = mediaType(req);
        if (type !== "text/csv" && type !== "application/json")
          throw new ApiError(
            415,
            "send application/json ({pipeline, rows}) or text/csv (?pipeline=NAME)",
          );
        const body = await readBody(req, maxBodyBytes);
        if (type === "text/csv") {
          const { rows, lines } = parseCsvRows(body);
          const label = csvRowLabel(lines);
          sendJson(res, 201, await jobs.create(query.get("pipeline"), rows, undefined, label));
          return;
        }
        const o = parseJsonObject(body, 'body must be an object {"pipeline": ..., "rows": [...]}');
        if (Object.hasOwn(o, "request") && Object.hasOwn(o, "pipeline"))
          throw new ApiError(400, 'give either "pipeline" or an ad-hoc "request", not both');
        const own = (key: string) => (Object.hasOwn(o, key) ? o[key] : undefined);
        sendJson(
          res,
          201,
          await jobs.create(own("pipeline") ?? query.get("pipeline"), own("rows"), own("request")),
        );
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
              shaped.map((r) =>
                // Values come from the web: no cell may run as a spreadsheet formula.
                Object.fromEntries(
                  Object.entries({
                    ...r,
                    sources: JSON.stringify(r.sources),
                    errors: r.errors.map((e) => `${e.class}: ${e.message}`).join(" | "),
                  }).map(([column, value]) => [column, neutraliseFormula(value)]),
                ),
              ),
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
      method: "DELETE",
      path: "/v1/jobs/{id}",
      handle: async ({ res, params, query }) => {
        const rows = query.get("rows") ?? "unfinished";
        if (rows !== "unfinished" && rows !== "all")
          throw new ApiError(400, `rows=${rows}: must be unfinished (the default) or all`);
        sendJson(res, 200, await jobs.remove(params[0] as string, rows));
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
      path: "/v1/processes",
      handle: async ({ res }) =>
        sendJson(res, 200, await readLiveProcesses(runtime.db, runtime.config.schema)),
    },
    {
      method: "GET",
      path: "/v1/pipelines/{name}/report",
      handle: async ({ res, params }) =>
        sendJson(res, 200, await pipelineReport(runtime, jobs.pipeline(params[0]))),
    },
    ...rowRoutes(runtime, jobs),
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
    const target = checkRequestPath(req.url ?? "/");
    if (!target.ok) {
      sendJson(res, 400, { error: target.reason });
      return true;
    }
    const { path, query } = target;
    if (path !== "/" && path !== "/openapi.json" && !path.startsWith("/v1/")) return false;
    try {
      // Without tokens, nothing but the address guards the API: refuse names a web page owns.
      const foreign = tokens.length === 0 ? foreignHostRefusal(req) : undefined;
      if (foreign) throw new ApiError(421, foreign);
      if (path === "/openapi.json" || path === "/") {
        if (req.method !== "GET")
          throw new ApiError(405, `${req.method} is not allowed on ${path}`);
        if (path === "/openapi.json") {
          sendJson(res, 200, OPENAPI_DOCUMENT);
        } else {
          // The page itself holds no data; it reads the API with the caller's own credentials.
          res.writeHead(200, {
            "content-type": "text/html; charset=utf-8",
            "cache-control": "no-cache",
          });
          res.end(STATUS_PAGE);
        }
        return true;
      }
      const matches = compiled.filter((r) => r.regex.test(path));
      const route = matches.find((r) => r.method === req.method);
      if (matches.length === 0) throw new ApiError(404, `no route ${path}; see /openapi.json`);
      if (!route) throw new ApiError(405, `${req.method} is not allowed on ${path}`);
      if (!authorized(req))
        throw new ApiError(
          401,
          tokens.length === 0
            ? "no api.tokens are configured, so the API answers loopback clients only"
            : "send Authorization: Bearer <token> with a token from api.tokens",
        );
      const crossSite = crossSiteRefusal(req);
      if (crossSite) throw new ApiError(403, crossSite);
      const form = formContentRefusal(req);
      if (form) throw new ApiError(415, form);
      // checkRequestPath has decoded every segment once already: this cannot throw.
      const params = (route.regex.exec(path) ?? []).slice(1).map(decodeURIComponent);
      await route.handle({ req, res, params, query });
    } catch (caught) {
      const error = coerceError(caught);
      if (res.headersSent) {
        log(`api ${req.method} ${path} failed mid-response: ${error.message}`);
        res.end();
      } else if (error instanceof ApiError) {
        if (error.closeConnection) closeAfterResponse(req, res);
        sendJson(res, error.status, { error: error.message });
      } else {
        log(`api ${req.method} ${path} failed: ${error.message}`);
        sendJson(res, 500, { error: "internal error; see the server log" });
      }
    }
    return true;
  };

  return { handle, routes: routes.map((r) => ({ method: r.method, path: r.path })) };
}
