/**
 * The worker's CPU per LLM call: sent directly over node:http (src/llm/post-chat-completion.ts
 * over src/llm/json-fetch.ts, what backends use for live calls), through the openai SDK over the
 * same node:http fetch, and through the SDK over the global fetch (undici) as the baseline, all
 * in the same run, against the fake LLM in a process of its own answering at once, 64 calls in
 * flight, a 10-row prompt.
 *
 *   node --import tsx bench/llm-call-cpu.ts [calls=6000] [rounds=3]
 *
 * The first round of each warms up and is not printed.
 */
import OpenAI from "openai";
import { jsonFetch } from "../src/llm/json-fetch.ts";
import { chatCompletionsEndpoint, postChatCompletion } from "../src/llm/post-chat-completion.ts";
import { fmt } from "./support/bench-database.ts";
import { startFakeLlmProcess } from "./support/fake-llm-process.ts";

const CALLS = Number(process.argv[2] ?? 6000);
const ROUNDS = Number(process.argv[3] ?? 3);
const IN_FLIGHT = 64;
const prompt = Array.from({ length: 10 }, (_, i) => `### row r${i}\nname: item ${i}`).join("\n\n");

const llm = await startFakeLlmProcess(0);
try {
  const body = { model: "fake", messages: [{ role: "user" as const, content: prompt }] };
  const sdk = (fetch: typeof globalThis.fetch) => {
    const client = new OpenAI({ baseURL: llm.url, apiKey: "unused", maxRetries: 0, fetch });
    return () => client.chat.completions.create(body);
  };
  const endpoint = chatCompletionsEndpoint({
    name: "fake",
    base_url: llm.url,
    model: "fake",
    timeout_ms: 30_000,
    max_concurrency: IN_FLIGHT,
    structured_output: "none",
  });
  const variants: [string, () => Promise<unknown>][] = [
    ["direct (node:http)", () => postChatCompletion(endpoint, body, new AbortController().signal)],
    ["SDK over node:http", sdk(jsonFetch)],
    ["SDK over global fetch", sdk(globalThis.fetch)],
  ];
  for (let round = 0; round < ROUNDS; round++) {
    for (const [name, call] of variants) {
      let next = 0;
      const cpu = process.cpuUsage();
      const started = performance.now();
      await Promise.all(
        Array.from({ length: IN_FLIGHT }, async () => {
          while (next++ < CALLS) await call();
        }),
      );
      const used = process.cpuUsage(cpu);
      const seconds = (performance.now() - started) / 1000;
      if (round > 0)
        console.log(
          `${name.padEnd(24)} ${fmt((used.user + used.system) / CALLS, 1)} µs of CPU per call, ${fmt(CALLS / seconds)} calls/s`,
        );
    }
  }
} finally {
  await llm.close();
}
