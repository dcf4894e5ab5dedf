/**
 * Start-up time of the command line: `gleaner --help` and `gleaner status` (the demo config,
 * migrated into a database of this benchmark's own), each run N times as a whole process, the
 * compiled dist/ against the baseline of the TypeScript sources through tsx
 * (GLEANER_FROM_SOURCES=1), measured in the same run. Builds dist/ first when it is stale.
 *
 *   node --import tsx bench/start-up.ts [runs=10]
 */
import { execFileSync, spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { createBenchDatabase, fmt } from "./support/bench-database.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const RUNS = Number(process.argv[2] ?? 10);

function time(args: string[], env: NodeJS.ProcessEnv): number[] {
  const out: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const started = process.hrtime.bigint();
    const r = spawnSync(process.execPath, ["bin/gleaner.js", ...args], {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: ["ignore", "ignore", "pipe"],
    });
    if (r.status !== 0)
      throw new Error(`gleaner ${args.join(" ")}: exit ${r.status}\n${r.stderr.toString()}`);
    out.push(Number(process.hrtime.bigint() - started) / 1e6);
  }
  return out;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
const line = (what: string, xs: number[]) =>
  `${what.padEnd(44)} median ${fmt(median(xs)).padStart(6)} ms  (min ${fmt(Math.min(...xs))}, max ${fmt(Math.max(...xs))})`;

execFileSync(process.execPath, ["bin/build.js"], { cwd: ROOT, stdio: "inherit" });
const database = await createBenchDatabase("start_up");
try {
  const env = { DATABASE_URL: database.url, GLEANER_LOG_LEVEL: "warn" };
  execFileSync(process.execPath, ["bin/gleaner.js", "migrate"], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ["ignore", "ignore", "inherit"],
  });
  const sources = { ...env, GLEANER_FROM_SOURCES: "1" };
  console.log(`${RUNS} runs each, whole processes`);
  console.log(line("gleaner --help, sources through tsx", time(["--help"], sources)));
  console.log(line("gleaner --help, dist/          (aim < 300)", time(["--help"], env)));
  console.log(line("gleaner status, sources through tsx", time(["status"], sources)));
  console.log(line("gleaner status, dist/          (aim < 1000)", time(["status"], env)));
} finally {
  await database.drop();
}
