/**
 * Runs the fake LLM in a child process, as a real remote LLM would be: its HTTP and JSON work
 * must not be charged to Gleaner's event loop in a throughput figure.
 *
 * As a child: node --import tsx bench/support/fake-llm-process.ts <latencyMs>
 */
import { fork, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";

export async function startFakeLlmProcess(latencyMs: number): Promise<{
  url: string;
  /** The child's pid, for benches that read its CPU time from /proc. */
  pid: number;
  stats: () => Promise<{ calls: number; maxInFlight: number }>;
  close: () => Promise<void>;
}> {
  const child: ChildProcess = fork(fileURLToPath(import.meta.url), [String(latencyMs)], {
    execArgv: ["--import", "tsx"],
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  const url = await new Promise<string>((resolve, reject) => {
    child.once("message", (m) => resolve((m as { url: string }).url));
    child.once("exit", (code) => reject(new Error(`fake LLM process exited with ${code}`)));
  });
  return {
    url,
    pid: child.pid ?? 0,
    stats: () =>
      new Promise((resolve) => {
        child.once("message", (m) => resolve(m as { calls: number; maxInFlight: number }));
        child.send("stats");
      }),
    close: async () => {
      child.kill("SIGTERM");
      await new Promise((r) => child.once("exit", r));
    },
  };
}

/**
 * The answer to one chat completion request: every row the prompt lists, labelled "ok". A lean
 * stand-in for test/support/fake-llm-server.ts's `answerRows`, which parses and keeps every
 * request for tests to inspect: here nothing is kept, and the row ids are read from the body's
 * text (each heading `### row <id>` ends in the JSON escape of a line break), so this process
 * charges the machine's cores, which Gleaner shares with it, as little as it can. A remote LLM
 * would charge them nothing.
 */
export function answerBody(body: string, sequence: number): string {
  const ids = Array.from(body.matchAll(/### row (r[0-9a-f]+)\\n/g), (m) => m[1] as string);
  const content = JSON.stringify({
    rows: ids.map((id) => ({ id, label: { value: "ok", confidence: 0.9 } })),
  });
  const promptTokens = Math.ceil(body.length / 4);
  const completionTokens = Math.ceil(content.length / 4);
  return JSON.stringify({
    id: `chatcmpl-fake-${sequence}`,
    object: "chat.completion",
    created: Math.floor(Date.now() / 1000),
    model: "fake",
    choices: [
      {
        index: 0,
        message: { role: "assistant", content, refusal: null },
        finish_reason: "stop",
        logprobs: null,
      },
    ],
    usage: {
      prompt_tokens: promptTokens,
      completion_tokens: completionTokens,
      total_tokens: promptTokens + completionTokens,
    },
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url) && process.send) {
  const latency = Number(process.argv[2] ?? 0);
  let calls = 0;
  let inFlight = 0;
  let maxInFlight = 0;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      if (req.method !== "POST" || !req.url?.startsWith("/v1/chat/completions")) {
        res.writeHead(404, { "content-type": "application/json" });
        res.end(JSON.stringify({ error: { message: `no route ${req.method} ${req.url}` } }));
        return;
      }
      calls++;
      maxInFlight = Math.max(maxInFlight, ++inFlight);
      const text = answerBody(Buffer.concat(chunks).toString("utf8"), calls);
      const send = () => {
        inFlight--;
        res.writeHead(200, { "content-type": "application/json" });
        res.end(text);
      };
      if (latency > 0) setTimeout(send, latency);
      else send();
    });
  });
  server.listen(0, "127.0.0.1", () => {
    const { port } = server.address() as AddressInfo;
    process.send?.({ url: `http://127.0.0.1:${port}/v1` });
  });
  process.on("message", (m) => {
    if (m === "stats") process.send?.({ calls, maxInFlight });
  });
  process.on("SIGTERM", () => {
    server.closeAllConnections();
    server.close(() => process.exit(0));
  });
}
