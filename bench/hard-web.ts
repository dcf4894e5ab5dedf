/**
 * Evidence recall on the hard fixture web (bench/hard-web/hard-web.ts): organisations whose one
 * fact sits where naive crawling misses it (script-filled, behind foreign or follow-word-less
 * links, two deep, only on a register, beside a near-namesake, behind redirects and slow sites)
 * and robots.txt-disallowed decoy pages with wrong values. Prints recall per page kind, decoy
 * values written (must be 0), robots-disallowed fetches (must be 0) and LLM calls per row.
 *
 *   node --import tsx bench/hard-web.ts [--per-kind 8] [--javascript auto] [--escalate '<yaml>']
 *
 * `--escalate` is put under the pipeline's `escalate:` key as it is (a YAML flow mapping), to
 * measure with and without the escalation ladder.
 */
import { parseArgs } from "node:util";
import { createBenchDatabase, fmt } from "./support/bench-database.ts";
import { generateOrganisations, PAGE_KINDS } from "./hard-web/hard-web.ts";
import { runHardWeb } from "./hard-web/run-hard-web.ts";

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
const orgs = generateOrganisations(Number(values["per-kind"]));
const database = await createBenchDatabase("hardweb");
try {
  const r = await runHardWeb({
    orgs,
    databaseUrl: database.url,
    javascript,
    ...(values.escalate ? { escalate: values.escalate } : {}),
  });
  let filled = 0;
  console.log(
    `hard web: ${r.rows} organisations, javascript ${javascript}, escalate ${values.escalate ?? "off"}, ${fmt(r.seconds, 1)} s`,
  );
  for (const kind of PAGE_KINDS) {
    const k = r.perKind.get(kind);
    if (!k) continue;
    filled += k.filled;
    console.log(
      `  ${kind.padEnd(13)} ${k.filled}/${k.rows} = ${fmt((100 * k.filled) / k.rows, 1)}%`,
    );
  }
  console.log(
    `evidence recall: ${filled}/${r.rows} = ${fmt((100 * filled) / r.rows, 1)}% (aim ≥ 97% with escalation)`,
  );
  console.log(
    `decoy values written: ${r.decoys.length} (must be 0)`,
    r.decoys.length ? r.decoys : "",
  );
  console.log(`robots-disallowed fetches: ${r.robotsFetches.length} (must be 0)`);
  console.log(`LLM calls: ${r.llmCalls}, ${fmt(r.llmCalls / r.rows, 2)} per row`);
} finally {
  if (!process.env.BENCH_KEEP) await database.drop();
}
