// An OpenAI-compatible chat completions server on 127.0.0.1 for tests: real HTTP, so the
// openai client's own timeout, error and header handling is exercised, scripted per test.
import { createServer, type IncomingHttpHeaders, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";

export interface FakeLlmRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  /** Parsed JSON body (undefined for GET). */
  body: Record<string, unknown> | undefined;
  model: string | undefined;
  system: string | undefined;
  /** Text of the user message(s). */
  prompt: string;
  responseFormat: unknown;
}

export interface FakeUsage {
  prompt_tokens: number;
  completion_tokens: number;
}

export type Reply =
  | {
      kind: "completion";
      content: string | null;
      usage?: Partial<FakeUsage>;
      model?: string;
      finishReason?: string;
    }
  | { kind: "status"; status: number; body: unknown; headers: Record<string, string> }
  | { kind: "hang" }
  | { kind: "reset" }
  | { kind: "delay"; ms: number; then: Reply };

export type Handler = (req: FakeLlmRequest) => Reply | Promise<Reply>;

interface CompletionOptions {
  usage?: Partial<FakeUsage>;
  model?: string;
  finishReason?: string;
}

export const reply = {
  /** An assistant message whose content is JSON.stringify(obj). */
  json: (obj: unknown, options: CompletionOptions = {}): Reply => ({
    kind: "completion",
    content: JSON.stringify(obj),
    ...options,
  }),
  text: (content: string | null, options: CompletionOptions = {}): Reply => ({
    kind: "completion",
    content,
    ...options,
  }),
  /** An error status; the body defaults to an OpenAI-style `{ error: { message } }`. */
  status: (status: number, body?: unknown, headers: Record<string, string> = {}): Reply => ({
    kind: "status",
    status,
    body: body ?? { error: { message: `fake error ${status}`, type: "fake_error" } },
    headers,
  }),
  /** Never answers; the socket is destroyed by close(). */
  hang: (): Reply => ({ kind: "hang" }),
  /** Destroys the connection without an answer. */
  reset: (): Reply => ({ kind: "reset" }),
  delay: (ms: number, then: Reply): Reply => ({ kind: "delay", ms, then }),
  /** Content with no parseable JSON in it. */
  brokenJson: (): Reply => ({
    kind: "completion",
    content: 'Sure! Here is the answer: {"rows": [{"id": "1", "label": {"value": "pos',
  }),
};

/**
 * The part of a batch prompt that belongs to one row: from its `### row <id>` line to the next
 * such line. Stages draw the ids at random for each call (src/stages/batch-prompt.ts), so a test
 * tells rows apart by what their sections say, not by their ids.
 */
export function rowSection(prompt: string, id: string): string {
  const heading = `### row ${id}\n`;
  const start = prompt.startsWith(heading) ? 0 : prompt.indexOf(`\n${heading}`) + 1;
  if (start === 0 && !prompt.startsWith(heading)) return "";
  const end = prompt.indexOf("\n### row ", start);
  return prompt.slice(start, end === -1 ? undefined : end + 1);
}

/**
 * The row key a test's prompt template writes as `#{{id}}`, read from the row's section: the
 * prompt's row ids are drawn per call, so a test that answers by key puts the key in the text.
 */
export function keyInSection(prompt: string, id: string): string {
  const key = /#(\d+)/.exec(rowSection(prompt, id))?.[1];
  if (key === undefined)
    throw new Error(`no #<key> in the section of row ${id}: add #{{id}} to the test's prompt`);
  return key;
}

/** Row ids the prompt lists, one `### row <id>` line each. */
export function rowIdsInPrompt(prompt: string): string[] {
  return [...prompt.matchAll(/^### row (.+?)\s*$/gm)].map((m) => m[1] ?? "");
}

/** A row's section without its heading, its escaped values read back (`\n` → a line break). */
export function rowText(prompt: string, id: string): string {
  const body = rowSection(prompt, id).split("\n").slice(1).join("\n").trimEnd();
  return JSON.parse(`"${body.replace(/\n/g, "\\n").replace(/(?<!\\)"/g, '\\"')}"`) as string;
}

/**
 * A handler answering every row listed in the prompt; the callback returns the row's output
 * fields verbatim, e.g. `{ sentiment: { value: "positive", confidence: 0.9 } }`.
 */
export function answerRows(
  values: (rowId: string, prompt: string) => Record<string, unknown>,
): Handler {
  return (req) =>
    reply.json({
      rows: rowIdsInPrompt(req.prompt).map((id) => ({ id, ...values(id, req.prompt) })),
    });
}

export interface FakeLlm {
  /** Base URL ending in /v1. */
  readonly url: string;
  readonly port: number;
  /** Every request received, in order (including GET /v1/models). */
  readonly requests: FakeLlmRequest[];
  handle(handler: Handler): void;
  /** Chat completion requests being handled right now. */
  inFlight(): number;
  /** Highest inFlight() seen since start or the last resetStats(). */
  maxInFlight(): number;
  resetStats(): void;
  close(): Promise<void>;
}

function messageText(content: unknown): string {
  if (typeof content === "string") return content;
  if (Array.isArray(content)) {
    return content
      .map((part: unknown) =>
        typeof part === "object" && part !== null && "text" in part ? String(part.text) : "",
      )
      .join("");
  }
  return "";
}

function toFakeRequest(
  method: string,
  path: string,
  headers: IncomingHttpHeaders,
  raw: string,
): FakeLlmRequest {
  const body = raw ? (JSON.parse(raw) as Record<string, unknown>) : undefined;
  const messages = Array.isArray(body?.["messages"]) ? (body["messages"] as unknown[]) : [];
  const byRole = (role: string): string[] =>
    messages
      .filter(
        (m): m is { role: string; content: unknown } =>
          typeof m === "object" && m !== null && "role" in m && m.role === role,
      )
      .map((m) => messageText(m.content));
  const system = byRole("system");
  return {
    method,
    path,
    headers,
    body,
    model: typeof body?.["model"] === "string" ? body["model"] : undefined,
    system: system.length > 0 ? system.join("\n") : undefined,
    prompt: byRole("user").join("\n"),
    responseFormat: body?.["response_format"],
  };
}

function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = typeof body === "string" ? body : JSON.stringify(body);
  const type = typeof body === "string" ? "text/plain" : "application/json";
  res.writeHead(status, { "content-type": type, ...headers });
  res.end(text);
}

export async function startFakeLlm(): Promise<FakeLlm> {
  let handler: Handler = () => reply.status(500, { error: { message: "fake LLM has no handler" } });
  const requests: FakeLlmRequest[] = [];
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  let inFlight = 0;
  let maxInFlight = 0;
  let sequence = 0;

  const sleep = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      const timer = setTimeout(() => {
        timers.delete(timer);
        resolve();
      }, ms);
      timers.add(timer);
    });

  async function respond(res: ServerResponse, req: FakeLlmRequest, answer: Reply): Promise<void> {
    switch (answer.kind) {
      case "hang":
        return;
      case "reset":
        res.socket?.destroy();
        return;
      case "delay":
        await sleep(answer.ms);
        if (res.destroyed) return;
        return respond(res, req, answer.then);
      case "status":
        sendJson(res, answer.status, answer.body, answer.headers);
        return;
      case "completion": {
        const promptChars = [req.system ?? "", req.prompt].join("").length;
        const promptTokens = answer.usage?.prompt_tokens ?? Math.ceil(promptChars / 4);
        const completionTokens =
          answer.usage?.completion_tokens ?? Math.ceil((answer.content ?? "").length / 4);
        sendJson(res, 200, {
          id: `chatcmpl-fake-${++sequence}`,
          object: "chat.completion",
          created: Math.floor(Date.now() / 1000),
          model: answer.model ?? req.model ?? "fake-model",
          choices: [
            {
              index: 0,
              message: { role: "assistant", content: answer.content, refusal: null },
              finish_reason: answer.finishReason ?? "stop",
              logprobs: null,
            },
          ],
          usage: {
            prompt_tokens: promptTokens,
            completion_tokens: completionTokens,
            total_tokens: promptTokens + completionTokens,
          },
        });
        return;
      }
    }
  }

  const server = createServer((httpReq, res) => {
    const chunks: Buffer[] = [];
    httpReq.on("data", (chunk: Buffer) => chunks.push(chunk));
    httpReq.on("end", () => {
      const path = (httpReq.url ?? "/").split("?")[0] ?? "/";
      const method = httpReq.method ?? "GET";
      let req: FakeLlmRequest;
      try {
        req = toFakeRequest(
          method,
          httpReq.url ?? "/",
          httpReq.headers,
          Buffer.concat(chunks).toString("utf8"),
        );
      } catch (err) {
        sendJson(res, 400, { error: { message: `fake LLM: bad JSON body: ${String(err)}` } });
        return;
      }
      requests.push(req);
      if (method === "GET" && path === "/v1/models") {
        sendJson(res, 200, {
          object: "list",
          data: [{ id: "fake-model", object: "model", created: 0, owned_by: "fake" }],
        });
        return;
      }
      if (method !== "POST" || path !== "/v1/chat/completions") {
        sendJson(res, 404, { error: { message: `fake LLM: no route ${method} ${path}` } });
        return;
      }
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      let counted = true;
      const done = (): void => {
        if (counted) inFlight--;
        counted = false;
      };
      res.on("finish", done);
      res.on("close", done);
      Promise.resolve()
        .then(() => handler(req))
        .then((answer) => respond(res, req, answer))
        .catch((err: unknown) => {
          // A throwing handler is a test bug; make it loud on both ends.
          console.error("fake LLM handler failed", err);
          if (!res.headersSent)
            sendJson(res, 500, { error: { message: `handler failed: ${String(err)}` } });
        });
    });
  });
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}/v1`,
    port,
    requests,
    handle: (next) => {
      handler = next;
    },
    inFlight: () => inFlight,
    maxInFlight: () => maxInFlight,
    resetStats: () => {
      maxInFlight = inFlight;
      requests.length = 0;
    },
    close: async () => {
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      const closed = new Promise<void>((resolve, reject) =>
        server.close((err) => (err ? reject(err) : resolve())),
      );
      // Hanging and keep-alive sockets would otherwise hold close() open forever.
      for (const socket of sockets) socket.destroy();
      await closed;
    },
  };
}
