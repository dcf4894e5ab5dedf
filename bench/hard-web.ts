/**
 * Evidence recall on the hard fixture web (bench/hard-web/hard-web.ts): organisations whose one
 * fact sits where naive crawling misses it (script-filled, behind foreign or follow-word-less
 * links, two deep, only on a register, beside a near-namesake, behind redirects and slow sites)
 * and robots.txt-disallowed decoy pages with wrong values. Runs the pipeline twice in the same
 * run — without the escalation ladder (the baseline) and with it — and prints recall per page
 * kind, decoy values written (must be 0), robots-disallowed fetches (must be 0) and LLM calls per
 * row, with the calls escalation added and for which rows.
 *
 *   node --import tsx bench/hard-web.ts [--per-kind 8] [--javascript auto] [--escalate '<yaml>']
 *
 * `--escalate` is put under the pipeline's `escalate:` key as it is (a YAML flow mapping); the
 * default is the ladder a research pipeline gets when it says nothing.
 */
import { parseArgs } from "node:util";
import { createBenchDatabase, fmt } from "./support/bench-database.ts";
import { generateOrganisations, PAGE_KINDS } from "./hard-web/hard-web.ts";
import { runHardWeb, type HardWebResult } from "./hard-web/run-hard-web.ts";

const { values } = parseArgs({
  options: {
    "per-kind": { type: "string", default: "8" },
    javascript: { type: "string", default: "auto" },
    escalate: { type: "string" },
  },
});
const javascript = values.javascript;
if (javascript !== "auto" && javascript !== "always" && javascript !== "never")
  throw new Error(`--javascript: auto, always or never, not ${javascript}`);
const mode: "auto" | "always" | "never" = javascript;
const orgs = generateOrganisations(Number(values["per-kind"]));

async function measure(escalate: string | undefined): Promise<HardWebResult> {
  const database = await createBenchDatabase("hardweb");
  try {
    return await runHardWeb({
      orgs,
      databaseUrl: database.url,
      javascript: mode,
      ...(escalate === undefined ? {} : { escalate }),
    });
  } finally {
    if (!process.env.BENCH_KEEP) await database.drop();
  }
}

const off = await measure("false");
const on = await measure(values.escalate);
console.log(`hard web: ${orgs.length} organisations, javascript ${javascript}`);
console.log(
  `${"page kind".padEnd(14)} ${"escalate: false".padStart(16)} ${`escalate: ${values.escalate ?? "default"}`.padStart(22)}`,
);
const share = (k: { filled: number; rows: number } | undefined) =>
  k ? `${k.filled}/${k.rows} = ${fmt((100 * k.filled) / k.rows, 0)}%` : "-";
for (const kind of PAGE_KINDS) {
  if (!off.perKind.has(kind) && !on.perKind.has(kind)) continue;
  console.log(
    `  ${kind.padEnd(12)} ${share(off.perKind.get(kind)).padStart(16)} ${share(on.perKind.get(kind)).padStart(22)}`,
  );
}
for (const [label, r] of [
  ["escalate: false", off],
  ["with escalation", on],
] as const) {
  const filled = [...r.perKind.values()].reduce((n, k) => n + k.filled, 0);
  console.log(
    `${label}: evidence recall ${filled}/${r.rows} = ${fmt((100 * filled) / r.rows, 1)}%, ` +
      `decoys written ${r.decoys.length} (must be 0), robots-disallowed fetches ${r.robotsFetches.length} (must be 0), ` +
      `LLM calls ${r.llmCalls} (${fmt(r.llmCalls / r.rows, 2)} per row), ${fmt(r.seconds, 1)} s`,
  );
  if (r.decoys.length > 0) console.log("  decoys:", r.decoys);
  if (r.missed.length > 0)
    console.log("  missed:", r.missed.map((m) => `${m.name} (${m.kind})`).join(", "));
}
console.log(
  `escalation added ${on.llmCalls - off.llmCalls} LLM calls; rows the baseline filled got ${on.callsForFilledRows} of the escalation calls (aim: 0)`,
);
