import type { IncomingMessage } from "node:http";
import { coerceError } from "../core/coerce-error.ts";
import { ApiError } from "./api-error.ts";
import { mediaType } from "./request-guards.ts";
import { readBody } from "./read-body.ts";

/** A JSON object request body (415 for another type, 400 for bad JSON or not an object). */
export async function readJsonObject(
  req: IncomingMessage,
  limit: number,
): Promise<Record<string, unknown>> {
  if (mediaType(req) !== "application/json") throw new ApiError(415, "send application/json");
  return parseJsonObject(await readBody(req, limit), "body must be a JSON object");
}

/** A request body parsed as a JSON object; 400 with `notObject` when it is JSON of another kind. */
export function parseJsonObject(body: string, notObject: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch (caught) {
    const error = coerceError(caught);
    throw new ApiError(400, `body is not JSON: ${error.message}`, { cause: error });
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed))
    throw new ApiError(400, notObject);
  return parsed as Record<string, unknown>;
}
