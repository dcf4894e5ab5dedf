import type { IncomingMessage } from "node:http";
import { ApiError } from "./api-error.ts";

/** Reads a request body, refusing more than `limit` bytes (413) before buffering it all. */
export async function readBody(req: IncomingMessage, limit: number): Promise<string> {
  const declared = Number(req.headers["content-length"] ?? "0");
  if (declared > limit)
    throw new ApiError(
      413,
      `body of ${declared} bytes is over the ${limit}-byte limit (api.max_body_bytes)`,
    );
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) {
      req.destroy();
      throw new ApiError(413, `body is over the ${limit}-byte limit (api.max_body_bytes)`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString("utf8");
}
