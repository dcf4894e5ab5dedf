import http from "node:http";
import https from "node:https";
import { promisify } from "node:util";
import zlib from "node:zlib";

/**
 * A `fetch` for JSON APIs (the live chat completion calls), over node:http and node:https with
 * keep-alive agents, answering with a Response-like object over the body read whole.
 *
 * Why not the global fetch: for a small JSON request and answer, undici's fetch and its web
 * streams cost more than the rest of the call. `node --import tsx bench/llm-call-cpu.ts`: 204-350
 * µs of the caller's CPU per call through the SDK, against 665-813 µs with the global fetch in
 * the same runs (2026-12-05, 2-core VM).
 *
 * It does what the SDK needs of fetch and no more: string or byte bodies (anything else, a
 * multipart upload to the Batch API, goes to the global fetch, as does a redirect, which this
 * does not follow), the abort signal (rejecting with an AbortError as fetch does, also while the
 * body is being read), gzip, deflate or br bodies decoded, and a request sent again when the
 * kept-alive socket it went out on turns out closed.
 */
/** Made on the first call, so importing this file creates nothing. */
let agents: Record<string, http.Agent> | undefined;
const decoders: Record<string, (body: Buffer) => Promise<Buffer>> = {
  gzip: promisify(zlib.gunzip),
  "x-gzip": promisify(zlib.gunzip),
  deflate: promisify(zlib.inflate),
  br: promisify(zlib.brotliDecompress),
};
/** Statuses whose Response may not carry a body. */
const NO_BODY = new Set([101, 204, 205, 304]);

export const jsonFetch: typeof globalThis.fetch = async (input, init) => {
  const url = new URL(input instanceof Request ? input.url : input);
  const body = init?.body;
  agents ??= {
    "http:": new http.Agent({ keepAlive: true }),
    "https:": new https.Agent({ keepAlive: true }),
  };
  const agent = agents[url.protocol];
  if (
    input instanceof Request ||
    agent === undefined ||
    (body != null && typeof body !== "string" && !(body instanceof Uint8Array))
  )
    return globalThis.fetch(input, init);
  const signal = init?.signal ?? undefined;
  if (signal?.aborted) throw abortError();
  const headers = headersOf(init?.headers);
  const send = (): Promise<{ res: http.IncomingMessage; body: Buffer }> =>
    new Promise((resolve, reject) => {
      const request = (url.protocol === "https:" ? https : http).request(url, {
        method: init?.method ?? "GET",
        headers,
        agent,
      });
      let answered = false;
      const onAbort = () => {
        request.destroy();
        reject(abortError());
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      const done = () => signal?.removeEventListener("abort", onAbort);
      request.on("error", (error: NodeJS.ErrnoException) => {
        done();
        // A kept-alive socket the server closed as this request went out on it (its idle
        // timeout and our reuse crossing), before any answer: the request is sent again, on the
        // next free socket or a new one. Node's documented answer to that race; undici's fetch
        // avoids it with the server's Keep-Alive hint, which Node 20's agent has no margin for.
        if (
          !answered &&
          request.reusedSocket &&
          (error.code === "ECONNRESET" || error.code === "EPIPE") &&
          !signal?.aborted
        )
          send().then(resolve, reject);
        else reject(error);
      });
      request.on("response", (res) => {
        answered = true;
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("error", (error) => {
          done();
          reject(error);
        });
        res.on("end", () => {
          done();
          resolve({ res, body: Buffer.concat(chunks) });
        });
      });
      request.end(body ?? undefined);
    });
  const response = await send();
  const { res } = response;
  const status = res.statusCode ?? 0;
  if (status >= 300 && status < 400 && res.headers.location) return globalThis.fetch(input, init);
  const encoding = String(res.headers["content-encoding"] ?? "").toLowerCase();
  const decode = decoders[encoding];
  const bytes = decode ? await decode(response.body) : response.body;
  const responseHeaders = new Headers();
  for (const [name, value] of Object.entries(res.headers)) {
    if (value === undefined) continue;
    // The body handed on is decoded: its length and encoding are no longer the wire's.
    if (decode && (name === "content-encoding" || name === "content-length")) continue;
    for (const v of Array.isArray(value) ? value : [value]) responseHeaders.append(name, v);
  }
  return new BufferedResponse(
    NO_BODY.has(status) ? null : bytes,
    status,
    res.statusMessage ?? "",
    responseHeaders,
    url.href,
  ) as unknown as Response;
};

/**
 * The part of Response the SDK and Gleaner read, over a body already in memory: `json()` and
 * `text()` decode the bytes at once rather than through a web stream (a measurable share of a
 * call's CPU). `body`, for anything that wants the stream, is made when first asked for.
 */
class BufferedResponse {
  bodyUsed = false;
  readonly redirected = false;
  readonly type = "basic";
  readonly ok: boolean;
  constructor(
    private readonly bytes: Buffer | null,
    readonly status: number,
    readonly statusText: string,
    readonly headers: Headers,
    readonly url: string,
  ) {
    this.ok = status >= 200 && status < 300;
  }
  private take(): Buffer {
    if (this.bodyUsed) throw new TypeError("Body is unusable: Body has already been read");
    this.bodyUsed = true;
    return this.bytes ?? Buffer.alloc(0);
  }
  get body(): ReadableStream<Uint8Array> | null {
    return this.bytes === null ? null : new Response(this.bytes).body;
  }
  text(): Promise<string> {
    return Promise.resolve().then(() => this.take().toString("utf8"));
  }
  json(): Promise<unknown> {
    return this.text().then((text) => JSON.parse(text) as unknown);
  }
  arrayBuffer(): Promise<ArrayBuffer> {
    return Promise.resolve().then(() => {
      const bytes = this.take();
      return bytes.buffer.slice(
        bytes.byteOffset,
        bytes.byteOffset + bytes.byteLength,
      ) as ArrayBuffer;
    });
  }
  blob(): Promise<Blob> {
    return this.arrayBuffer().then((buffer) => new Blob([buffer]));
  }
  clone(): BufferedResponse {
    return new BufferedResponse(this.bytes, this.status, this.statusText, this.headers, this.url);
  }
}

/**
 * The request's headers as node:http takes them. A plain object of strings (what Gleaner's own
 * callers pass) is used as it is; anything else goes through `Headers`, which costs a
 * measurable part of a small call.
 */
function headersOf(init: RequestInit["headers"]): Record<string, string> {
  if (
    init !== undefined &&
    !(init instanceof Headers) &&
    !Array.isArray(init) &&
    Object.values(init).every((v) => typeof v === "string")
  )
    return init as Record<string, string>;
  const headers: Record<string, string> = {};
  new Headers(init).forEach((value, name) => (headers[name] = value));
  return headers;
}

function abortError(): DOMException {
  return new DOMException("This operation was aborted", "AbortError");
}
