/**
 * Runs every benchmark in turn with the figures the issues ask for. Each script prints its own
 * baseline, measured in the same run. Needs a PostgreSQL (DATABASE_URL, or 127.0.0.1:5432).
 *
 *   npm run bench
 */
import { execFileSync } from "node:child_process";

const runs: [string, string[]][] = [
  ["bench/throughput.ts", ["50000", "0", "64"]],
  ["bench/throughput.ts", ["20000", "500", "64"]],
  ["bench/llm-call-cpu.ts", []],
  ["bench/insert-latency.ts", ["200"]],
  ["bench/sweep-tick.ts", ["10000000", "10000"]],
  ["bench/metrics-scrape.ts", ["10000000", "10000"]],
  ["bench/rows-page.ts", ["50000", "500"]],
  ["bench/crawl-fetch.ts", ["2000", "16"]],
  ["bench/page-content.ts", ["500"]],
  ["bench/crawl-browser.ts", []],
  ["bench/evidence-recall.ts", []],
  ["bench/reprocess-cost.ts", []],
  ["bench/drift-freshness-cost.ts", []],
  ["bench/estimate-error.ts", []],
  ["bench/import.ts", ["100000", "3"]],
  ["bench/upgrade-pause.ts", ["1000000"]],
];

for (const [script, args] of runs) {
  console.log(`\n=== ${script} ${args.join(" ")}`);
  execFileSync(process.execPath, ["--import", "tsx", script, ...args], { stdio: "inherit" });
}
