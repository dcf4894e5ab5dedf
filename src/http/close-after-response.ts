import type { IncomingMessage, ServerResponse } from "node:http";
import type { Socket } from "node:net";

/** How long a refused upload's connection reads on (and drops) what the client still sends. */
const LINGER_MS = 5_000;

/**
 * For a response sent before the request body was read to its end (a 413): sends
 * `Connection: close`, drops the rest of the body as it arrives, and closes the connection the
 * lingering way. Closed at once, while the client is still sending, the kernel answers the
 * client's next bytes with a reset, and a reset can discard the response before the client has
 * read it: the client sees "connection reset" instead of the 413. So once the response is out,
 * the server stops writing (FIN) and reads on until the client closes, or `lingerMs` at most.
 */
export function closeAfterResponse(
  req: IncomingMessage,
  res: ServerResponse,
  lingerMs = LINGER_MS,
): void {
  res.setHeader("connection", "close");
  // Flowing with no 'data' listener: what arrives is read and dropped, never kept.
  req.resume();
  // Node's HTTP server ends a `Connection: close` exchange with socket.destroySoon(), which
  // destroys the socket as soon as the response is written. Half-close instead, destroy later.
  req.socket.destroySoon = function lingeringClose(this: Socket): void {
    if (this.writable) this.end();
    const timer = setTimeout(() => this.destroy(), lingerMs);
    timer.unref();
    this.once("close", () => clearTimeout(timer));
  };
}
