/**
 * Runs the fake LLM in a child process, as a real remote LLM would be: its HTTP and JSON work
 * must not be charged to Gleaner's event loop in a throughput figure.
 *
 * As a child: node --import tsx bench/support/fake-llm-process.ts <latencyMs>
 */
import { fork, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { answerRows, reply, startFakeLlm } from "../../test/support/fake-llm-server.ts";

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

if (process.argv[1] === fileURLToPath(import.meta.url) && process.send) {
  const latency = Number(process.argv[2] ?? 0);
  const llm = await startFakeLlm();
  const answer = answerRows(() => ({ label: { value: "ok", confidence: 0.9 } }));
  llm.handle((req) => (latency > 0 ? reply.delay(latency, answer(req) as never) : answer(req)));
  process.on("message", (m) => {
    if (m === "stats")
      process.send?.({ calls: llm.requests.length, maxInFlight: llm.maxInFlight() });
  });
  process.on("SIGTERM", () => {
    void llm.close().then(() => process.exit(0));
  });
  process.send({ url: llm.url });
}
