import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { startHarness, type Harness } from "../support/gleaner-harness.ts";
import { spawnGleaner, waitFor, type GleanerProcess } from "../support/gleaner-process.ts";

/**
 * The terminal goes away under a running `gleaner start` (an ssh session dropped, `| head`
 * exiting): every later write to stdout and stderr fails with EPIPE. Lines no one can read are
 * not worth the rows in flight: the process keeps working and finishes every row.
 */
let h: Harness;
let gleaner: GleanerProcess | undefined;

const config = `
pipelines:
  leads:
    table: leads
    inputs: [name]
    outputs: { score: { type: integer, description: "A score" } }
    stages:
      - { name: score, kind: custom, module: ${JSON.stringify(join(process.cwd(), "test/fixtures/word-count-stage.ts"))}, outputs: [score] }
`;

beforeAll(async () => {
  h = await startHarness("output_gone", config);
});

afterAll(async () => {
  await gleaner?.kill();
  await h?.close();
});

async function done(): Promise<number> {
  const rows = await h.query<{ n: number }>(
    "select count(*)::int as n from leads where enrichment_status = 'done'",
  );
  return rows[0]?.n ?? 0;
}

it("keeps working and finishes every row after stdout and stderr are closed", async () => {
  const dir = mkdtempSync(join(tmpdir(), "gleaner-output-gone-"));
  writeFileSync(join(dir, "gleaner.yaml"), config);
  gleaner = spawnGleaner(["start", "--no-http", "--config", join(dir, "gleaner.yaml")], {
    env: { DATABASE_URL: h.testDb.url, GLEANER_LOG_LEVEL: "debug" },
  });
  await h.query("insert into leads (name) select 'first ' || i from generate_series(1, 20) i");
  await waitFor("the first rows to be done", async () => (await done()) === 20, 60_000);

  // The reader leaves: both pipes are closed at this end, so the next write gets EPIPE.
  gleaner.child.stdout?.destroy();
  gleaner.child.stderr?.destroy();
  // Rows inserted afterwards make the process log (debug: every job) and draw progress.
  for (let i = 0; i < 5; i++) {
    await h.query(
      `insert into leads (name) select 'later ${i} ' || n from generate_series(1, 20) n`,
    );
    await new Promise((r) => setTimeout(r, 300));
  }
  await waitFor("every row to be done", async () => (await done()) === 120, 60_000);
  expect(gleaner.alive()).toBe(true);

  gleaner.signal("SIGTERM");
  // 143 would be the default for SIGTERM; Gleaner stops cleanly with 0.
  expect(await gleaner.exited()).toBe(0);
}, 180_000);
