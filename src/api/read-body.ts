import type { IncomingMessage } from "node:http";
import { ApiError } from "./api-error.ts";

/**
 * Reads a request body as UTF-8 text, refusing more than `limit` bytes (413). The bytes are
 * counted as they arrive, whether the body is chunked or has a Content-Length, and nothing past
 * the limit is kept: the request stops there, and the rest of the upload is dropped as it
 * arrives. The 413's ApiError asks for the connection to be closed (closeAfterResponse). Not
 * UTF-8 is a 400; a leading byte order mark is dropped.
 */
export function readBody(req: IncomingMessage, limit: number): Promise<string> {
  const declared = Number(req.headers["content-length"] ?? "0");
  if (declared > limit)
    return Promise.reject(
      tooLarge(`body of ${declared} bytes is over the ${limit}-byte limit (api.max_body_bytes)`),
    );
  if (req.destroyed)
    return Promise.reject(new ApiError(400, "the client closed the connection before the body"));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const stop = () => {
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("error", onError);
      req.off("close", onClose);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size <= limit) {
        chunks.push(chunk);
        return;
      }
      stop();
      // Flowing with no listener: what the client still sends is read and dropped.
      req.resume();
      reject(tooLarge(`body is over the ${limit}-byte limit (api.max_body_bytes)`));
    };
    const onEnd = () => {
      stop();
      try {
        resolve(UTF8.decode(Buffer.concat(chunks)));
      } catch (error) {
        reject(
          new ApiError(
            400,
            "the body is not valid UTF-8: send UTF-8 text (a spreadsheet's “CSV UTF-8” export)",
            { cause: error },
          ),
        );
      }
    };
    const onError = (error: Error) => {
      stop();
      reject(new ApiError(400, `the body could not be read: ${error.message}`, { cause: error }));
    };
    const onClose = () => {
      stop();
      reject(new ApiError(400, "the client closed the connection before the body ended"));
    };
    req.on("data", onData);
    req.on("end", onEnd);
    req.on("error", onError);
    req.on("close", onClose);
  });
}

/** fatal: malformed UTF-8 throws instead of becoming U+FFFD; the default drops a BOM. */
const UTF8 = new TextDecoder("utf-8", { fatal: true });

function tooLarge(message: string): ApiError {
  return new ApiError(413, message, { closeConnection: true });
}
