import type { IncomingMessage, ServerResponse } from "node:http";

/** What a route's handler receives: the path's parameters decoded, the query string parsed. */
export interface Context {
  req: IncomingMessage;
  res: ServerResponse;
  params: string[];
  query: URLSearchParams;
}

/** A /v1 route; api-router.ts runs the guards (token, CSRF) before `handle`. */
export interface Route {
  method: "GET" | "POST" | "DELETE";
  /** The path as the OpenAPI document writes it. */
  path: string;
  handle: (ctx: Context) => Promise<void>;
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { "content-type": "application/json; charset=utf-8" });
  res.end(JSON.stringify(body));
}
