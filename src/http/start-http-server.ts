import { createServer, type Server } from "node:http";
import type { Registry } from "prom-client";
import type { Database } from "../db/connect-database.ts";
import { pendingMigrations } from "../db/migrate.ts";

/**
 * The operations port: /metrics for Prometheus, /healthz (the process is up) and /readyz (the
 * database answers and migrations are current).
 */
export async function startHttpServer(options: {
  host: string;
  port: number;
  registry: Registry;
  database: Database;
  schema: string;
}): Promise<{ server: Server; url: string; close: () => Promise<void> }> {
  const server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    const send = (status: number, body: string, type = "text/plain; charset=utf-8") => {
      res.writeHead(status, { "content-type": type });
      res.end(body);
    };
    if (req.method !== "GET") return send(405, "method not allowed\n");
    if (path === "/healthz") return send(200, "ok\n");
    if (path === "/readyz") {
      pendingMigrations(options.database, options.schema)
        .then((pending) =>
          pending.length === 0
            ? send(200, "ready\n")
            : send(503, `migrations pending: ${pending.join(", ")}; run gleaner migrate\n`),
        )
        .catch((error: Error) => send(503, `database unreachable: ${error.message}\n`));
      return;
    }
    if (path === "/metrics") {
      options.registry
        .metrics()
        .then((text) => send(200, text, options.registry.contentType))
        .catch((error: Error) => send(500, `metrics failed: ${error.message}\n`));
      return;
    }
    send(404, "not found: try /metrics, /healthz or /readyz\n");
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
