/**
 * The worker's CPU per LLM call through the SDK: over node:http (src/llm/json-fetch.ts, what
 * backends use) against the global fetch (undici) as the baseline, both in the same run, against
 * the fake LLM in a process of its own answering at once, 64 calls in flight, a 10-row prompt.
 *
 *   node --import tsx bench/llm-call-cpu.ts [calls=6000] [rounds=3]
 *
 * The first round of each warms up and is not printed.
 */
import OpenAI from "openai";
import { jsonFetch } from "../src/llm/json-fetch.ts";
import { fmt } from "./support/bench-database.ts";
import { startFakeLlmProcess } from "./support/fake-llm-process.ts";

const CALLS = Number(process.argv[2] ?? 6000);
const ROUNDS = Number(process.argv[3] ?? 3);
const IN_FLIGHT = 64;
const prompt = Array.from({ length: 10 }, (_, i) => `### row r${i}\nname: item ${i}`).join("\n\n");

const llm = await startFakeLlmProcess(0);
try {
  const variants: [string, typeof globalThis.fetch][] = [
    ["node:http (json-fetch)", jsonFetch],
    ["global fetch (baseline)", globalThis.fetch],
  ];
  for (let round = 0; round < ROUNDS; round++) {
    for (const [name, fetch] of variants) {
      const client = new OpenAI({ baseURL: llm.url, apiKey: "unused", maxRetries: 0, fetch });
      let next = 0;
      const cpu = process.cpuUsage();
      const started = performance.now();
      await Promise.all(
        Array.from({ length: IN_FLIGHT }, async () => {
          while (next++ < CALLS)
            await client.chat.completions.create({
              model: "fake",
              messages: [{ role: "user", content: prompt }],
            });
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
