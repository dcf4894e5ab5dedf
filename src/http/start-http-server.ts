import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Registry } from "prom-client";
import type { Database } from "../db/connect-database.ts";
import { pendingMigrations } from "../db/migrate.ts";
import type { ServedCorpus } from "../search/corpus-folders.ts";
import { checkRequestPath } from "./request-path.ts";
import { serveCorpus } from "./serve-corpus.ts";
import { coerceError } from "../core/coerce-error.ts";

/** A probe must answer even when the database hangs rather than refuses. */
const READY_CHECK_TIMEOUT_MS = 2000;

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`no answer from the database within ${ms} ms`)),
      ms,
    );
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(coerceError(error));
      },
    );
  });
}

/**
 * The HTTP port: /metrics for Prometheus, /healthz (the process is up), /readyz (the database
 * answers and migrations are current), and the REST API when one is given.
 */
export async function startHttpServer(options: {
  host: string;
  port: number;
  registry: Registry;
  database: Database;
  schema: string;
  /** The REST API (src/api/): answers /v1/* and /openapi.json, false for anything else. */
  api?: { handle: (req: IncomingMessage, res: ServerResponse) => Promise<boolean> };
  /** Corpus folders served under /corpus/<provider>/ (see src/search/corpus-folders.ts). */
  corpora?: readonly ServedCorpus[];
  /** Why this process cannot work right now (its job runner restarting), else undefined. */
  notReady?: () => string | undefined;
}): Promise<{ server: Server; url: string; close: () => Promise<void> }> {
  const server = createServer((req, res) => {
    const send = (status: number, body: string, type = "text/plain; charset=utf-8") => {
      res.writeHead(status, { "content-type": type });
      res.end(body);
    };
    // One check of the path before any routing: no route and no folder ever sees `..`.
    const target = checkRequestPath(req.url ?? "/");
    if (!target.ok)
      return req.url?.startsWith("/v1/")
        ? send(400, JSON.stringify({ error: target.reason }), "application/json; charset=utf-8")
        : send(400, `bad request: ${target.reason}\n`);
    const { path } = target;
    if (options.api && (path.startsWith("/v1/") || path === "/openapi.json" || path === "/")) {
      options.api
        .handle(req, res)
        // The API answers every path it is given; should it not, the client still gets an answer.
        .then((handled) => handled || send(404, "not found: see /openapi.json\n"))
        .catch((error: Error) => {
          if (!res.headersSent) send(500, `internal error: ${error.message}\n`);
          else res.end();
        });
      return;
    }
    if (req.method !== "GET") return send(405, "method not allowed\n");
    if (options.corpora?.length && serveCorpus(options.corpora, path, res)) return;
    if (path === "/healthz") return send(200, "ok\n");
    if (path === "/readyz") {
      const reason = options.notReady?.();
      if (reason) return send(503, `not ready: ${reason}\n`);
      withTimeout(pendingMigrations(options.database, options.schema), READY_CHECK_TIMEOUT_MS)
        .then((pending) =>
          pending.length === 0
            ? send(200, "ready\n")
            : send(503, `migrations pending: ${pending.join(", ")}; run gleaner migrate\n`),
        )
        .catch((error: unknown) =>
          send(503, `database unreachable: ${coerceError(error).message}\n`),
        );
      return;
    }
    if (path === "/metrics") {
      options.registry
        .metrics()
        .then((text) => send(200, text, options.registry.contentType))
        .catch((error: Error) => send(500, `metrics failed: ${error.message}\n`));
      return;
    }
    send(404, "not found: try /metrics, /healthz, /readyz or /openapi.json\n");
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : options.port;
  return {
    server,
    url: `http://${options.host}:${port}`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
