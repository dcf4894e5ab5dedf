// The OpenAI Batch API on 127.0.0.1 for tests: files (upload, content) and batches (create,
// retrieve, list, cancel), real HTTP so the openai SDK's own multipart upload and paging run.
// Each line of a batch is answered by a handler that sees the request as a chat completion
// would; modes make batches misbehave on purpose: slow, partly failed, expired, failed.
import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";

export interface BatchLineRequest {
  customId: string;
  body: Record<string, unknown>;
  system: string | undefined;
  prompt: string;
}

/** A line's answer: the assistant's content (a string as it is, else as JSON), or an error. */
export type LineAnswer =
  | { content: unknown; usage?: { prompt_tokens: number; completion_tokens: number } }
  | { error: string; status?: number };

export type BatchMode =
  /** Ends `completed` at the first poll after `pollsToFinish` polls (default 0). */
  | "complete"
  /** Ends `expired`: only the lines `lineFails` lets through answered... none by default. */
  | "expire"
  /** Ends `failed` (validation failed), no file at all. */
  | "fail";

export interface FakeBatchApi {
  readonly url: string;
  /** Every request received (method and path), in order. */
  readonly calls: { method: string; path: string }[];
  answer(handler: (line: BatchLineRequest) => LineAnswer): void;
  /** How the next batches created behave. */
  mode(mode: BatchMode, options?: { pollsToFinish?: number; answeredBeforeExpiry?: number }): void;
  /** Batches created, by id. */
  batches(): { id: string; status: string; lines: number; metadata: unknown }[];
  close(): Promise<void>;
}

interface StoredBatch {
  id: string;
  status: string;
  inputFileId: string;
  outputFileId?: string;
  errorFileId?: string;
  metadata: unknown;
  createdAt: number;
  polls: number;
  mode: BatchMode;
  pollsToFinish: number;
  answeredBeforeExpiry: number;
  lines: number;
}

function messageText(content: unknown): string {
  return typeof content === "string" ? content : "";
}

/** The `file` part of a multipart/form-data body. */
function filePart(raw: Buffer, contentType: string): string {
  const boundary = /boundary=(?:"([^"]+)"|([^;]+))/.exec(contentType);
  const mark = `--${boundary?.[1] ?? boundary?.[2] ?? ""}`;
  const text = raw.toString("utf8");
  for (const part of text.split(mark)) {
    if (!/name="file"/.test(part)) continue;
    const start = part.indexOf("\r\n\r\n");
    return part.slice(start + 4, part.length - 2);
  }
  throw new Error("no file part in the upload");
}

export async function startFakeBatchApi(): Promise<FakeBatchApi> {
  const files = new Map<string, string>();
  const batches = new Map<string, StoredBatch>();
  const calls: { method: string; path: string }[] = [];
  const sockets = new Set<Socket>();
  let handler: (line: BatchLineRequest) => LineAnswer = () => ({ error: "no handler" });
  let nextMode: { mode: BatchMode; pollsToFinish: number; answeredBeforeExpiry: number } = {
    mode: "complete",
    pollsToFinish: 0,
    answeredBeforeExpiry: 0,
  };
  let sequence = 0;

  const send = (res: ServerResponse, status: number, body: unknown): void => {
    const text = typeof body === "string" ? body : JSON.stringify(body);
    res.writeHead(status, {
      "content-type": typeof body === "string" ? "application/octet-stream" : "application/json",
    });
    res.end(text);
  };

  const view = (b: StoredBatch) => ({
    id: b.id,
    object: "batch",
    endpoint: "/v1/chat/completions",
    input_file_id: b.inputFileId,
    completion_window: "24h",
    status: b.status,
    output_file_id: b.outputFileId ?? null,
    error_file_id: b.errorFileId ?? null,
    created_at: b.createdAt,
    metadata: b.metadata,
    errors:
      b.status === "failed"
        ? { object: "list", data: [{ code: "invalid_file", message: "fake validation failure" }] }
        : null,
    request_counts: { total: b.lines, completed: 0, failed: 0 },
  });

  /** A chat completions body answered by the handler: the completion, or the line's error. */
  const answerBody = (
    customId: string,
    body: Record<string, unknown>,
  ): { completion: unknown } | { error: string; status?: number | undefined } => {
    const messages = (body["messages"] ?? []) as { role: string; content: unknown }[];
    const system = messages.find((m) => m.role === "system");
    const answer = handler({
      customId,
      body,
      system: system ? messageText(system.content) : undefined,
      prompt: messages
        .filter((m) => m.role === "user")
        .map((m) => messageText(m.content))
        .join("\n"),
    });
    if ("error" in answer) return answer;
    // A string is the content as it is; anything else is sent as JSON. Tokens are counted as
    // the fake chat completions server counts them, so live and batch costs compare.
    const content =
      typeof answer.content === "string" ? answer.content : JSON.stringify(answer.content);
    const promptChars = messages.map((m) => messageText(m.content)).join("").length;
    const usage = answer.usage ?? {
      prompt_tokens: Math.ceil(promptChars / 4),
      completion_tokens: Math.ceil(content.length / 4),
    };
    return {
      completion: {
        id: `chatcmpl-batch-${++sequence}`,
        object: "chat.completion",
        created: Math.floor(Date.now() / 1000),
        model: typeof body["model"] === "string" ? body["model"] : "fake",
        choices: [
          {
            index: 0,
            message: { role: "assistant", content, refusal: null },
            finish_reason: "stop",
            logprobs: null,
          },
        ],
        usage: { ...usage, total_tokens: usage.prompt_tokens + usage.completion_tokens },
      },
    };
  };

  /** Runs the batch's lines through the handler and writes its output and error files. */
  const finish = (b: StoredBatch, answerUpTo: number): void => {
    const input = (files.get(b.inputFileId) ?? "").split("\n").filter((l) => l.trim() !== "");
    const out: string[] = [];
    const errors: string[] = [];
    input.forEach((raw, index) => {
      const line = JSON.parse(raw) as { custom_id: string; body: Record<string, unknown> };
      if (index >= answerUpTo) return;
      const answer = answerBody(line.custom_id, line.body);
      if ("error" in answer) {
        errors.push(
          JSON.stringify({
            id: `batch_req_${++sequence}`,
            custom_id: line.custom_id,
            response: {
              status_code: answer.status ?? 500,
              request_id: `req_${sequence}`,
              body: { error: { message: answer.error, type: "server_error" } },
            },
            error: null,
          }),
        );
        return;
      }
      out.push(
        JSON.stringify({
          id: `batch_req_${++sequence}`,
          custom_id: line.custom_id,
          response: { status_code: 200, request_id: `req_${sequence}`, body: answer.completion },
          error: null,
        }),
      );
    });
    if (out.length > 0) {
      b.outputFileId = `file-out-${++sequence}`;
      files.set(b.outputFileId, `${out.join("\n")}\n`);
    }
    if (errors.length > 0) {
      b.errorFileId = `file-err-${++sequence}`;
      files.set(b.errorFileId, `${errors.join("\n")}\n`);
    }
  };

  const poll = (b: StoredBatch): void => {
    if (b.status !== "in_progress") return;
    if (b.polls++ < b.pollsToFinish) return;
    if (b.mode === "fail") {
      b.status = "failed";
    } else if (b.mode === "expire") {
      finish(b, b.answeredBeforeExpiry);
      b.status = "expired";
    } else {
      finish(b, Number.POSITIVE_INFINITY);
      b.status = "completed";
    }
  };

  const route = (req: IncomingMessage, raw: Buffer, res: ServerResponse): void => {
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    const path = url.pathname.replace(/^\/v1/, "");
    const method = req.method ?? "GET";
    calls.push({ method, path });
    // The same handler answers live calls too, for a backend used live by one stage and through
    // the Batch API by another (a stage's `mode`).
    if (method === "POST" && path === "/chat/completions") {
      const answer = answerBody(
        "live",
        JSON.parse(raw.toString("utf8")) as Record<string, unknown>,
      );
      return "error" in answer
        ? send(res, answer.status ?? 500, {
            error: { message: answer.error, type: "server_error" },
          })
        : send(res, 200, answer.completion);
    }
    if (method === "POST" && path === "/files") {
      const id = `file-${randomUUID()}`;
      files.set(id, filePart(raw, req.headers["content-type"] ?? ""));
      return send(res, 200, { id, object: "file", purpose: "batch", bytes: raw.length });
    }
    const content = /^\/files\/([^/]+)\/content$/.exec(path);
    if (method === "GET" && content) {
      const text = files.get(content[1] ?? "");
      return text === undefined
        ? send(res, 404, { error: { message: "no such file" } })
        : send(res, 200, text);
    }
    if (method === "POST" && path === "/batches") {
      const body = JSON.parse(raw.toString("utf8")) as Record<string, unknown>;
      const inputFileId = String(body["input_file_id"]);
      if (!files.has(inputFileId)) return send(res, 400, { error: { message: "no such file" } });
      const id = `batch_${randomUUID()}`;
      batches.set(id, {
        id,
        status: "in_progress",
        inputFileId,
        metadata: body["metadata"] ?? null,
        createdAt: Math.floor(Date.now() / 1000),
        polls: 0,
        lines: (files.get(inputFileId) ?? "").split("\n").filter((l) => l.trim() !== "").length,
        ...nextMode,
      });
      return send(res, 200, view(batches.get(id) as StoredBatch));
    }
    if (method === "GET" && path === "/batches") {
      const data = [...batches.values()].reverse().map(view);
      return send(res, 200, { object: "list", data, has_more: false });
    }
    const one = /^\/batches\/([^/]+)(\/cancel)?$/.exec(path);
    const batch = one ? batches.get(one[1] ?? "") : undefined;
    if (one && !batch) return send(res, 404, { error: { message: "no such batch" } });
    if (batch && method === "GET" && !one?.[2]) {
      poll(batch);
      return send(res, 200, view(batch));
    }
    if (batch && method === "POST" && one?.[2]) {
      if (batch.status === "in_progress") batch.status = "cancelled";
      return send(res, 200, view(batch));
    }
    send(res, 404, { error: { message: `no route ${method} ${path}` } });
  };

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      try {
        route(req, Buffer.concat(chunks), res);
      } catch (error) {
        send(res, 500, { error: { message: String(error) } });
      }
    });
  });
  server.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    calls,
    answer(h) {
      handler = h;
    },
    mode(mode, options = {}) {
      nextMode = {
        mode,
        pollsToFinish: options.pollsToFinish ?? 0,
        answeredBeforeExpiry: options.answeredBeforeExpiry ?? 0,
      };
    },
    batches: () =>
      [...batches.values()].map((b) => ({
        id: b.id,
        status: b.status,
        lines: b.lines,
        metadata: b.metadata,
      })),
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
