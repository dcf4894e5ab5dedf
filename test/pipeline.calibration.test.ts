import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { runEval } from "../src/eval/run-eval.ts";
import { readCalibrations } from "../src/sql/calibrations.ts";
import { answerRows, keyInSection, startFakeLlm, type FakeLlm } from "./support/fake-llm-server.ts";
import { quietLogger, startHarness, type Harness } from "./support/gleaner-harness.ts";

/**
 * A miscalibrated model: it says 0.9 for every answer and is right for half the rows (even
 * keys). `gleaner eval` measures it (ECE about 0.4), learns the mapping, stores it for the
 * pipeline (`calibrate: true`), and from then on both the next eval and the pipeline's own runs
 * settle a confidence near 0.5, the raw 0.9 kept beside it.
 */
const CITIES = ["Lisbon", "Porto", "Braga", "Faro", "Evora", "Coimbra", "Aveiro", "Viseu"];
const ROWS = 40;
const cityOf = (key: number) => CITIES[key % CITIES.length] as string;

let llm: FakeLlm;
let h: Harness;
let dir: string;
let golden: string;

beforeAll(async () => {
  llm = await startFakeLlm();
  llm.handle(
    answerRows((id, prompt) => {
      const key = Number(keyInSection(prompt, id));
      const right = key % 2 === 0;
      return { city: { value: right ? cityOf(key) : `Not ${cityOf(key)}`, confidence: 0.9 } };
    }),
  );
  h = await startHarness(
    "calibration",
    `
llm:
  backends:
    - { name: primary, base_url: "${llm.url}", model: overconfident }
pipelines:
  shops:
    table: shops
    inputs: [name]
    outputs: { city: { type: text, description: "The shop's city" } }
    min_confidence: 0.3
    calibrate: true
    stages:
      - { name: ask, kind: llm, backends: [primary], prompt: "Where is {{name}}? #{{id}}", outputs: [city] }
`,
  );
  dir = mkdtempSync(join(tmpdir(), "gleaner-calibration-"));
  golden = join(dir, "golden.csv");
  const lines = Array.from({ length: ROWS }, (_, i) => `${i + 1},Shop ${i + 1},${cityOf(i + 1)}`);
  writeFileSync(golden, ["id,name,city", ...lines].join("\n"));
}, 120_000);

afterAll(async () => {
  await h?.close();
  await llm?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const evaluate = () =>
  runEval({
    database: h.app.database,
    config: h.app.config,
    pipeline: "shops",
    golden,
    logger: quietLogger,
    timeoutMs: 120_000,
  });

it("corrects a model that says 0.9 and is right half the time", async () => {
  const first = await evaluate();
  const city = first.report.columns.find((c) => c.column === "city");
  expect(city).toMatchObject({ filled: ROWS, judged: ROWS, correct: ROWS / 2, precision: 0.5 });
  const cal = first.report.calibration;
  expect(cal.buckets.find((b) => b.cells > 0)).toMatchObject({
    from: 0.9,
    cells: ROWS,
    confidence: 0.9,
    accuracy: 0.5,
  });
  expect(cal.ece_before).toBeCloseTo(0.4, 3);
  expect(cal.after_basis).toBe("learnt (in sample)");
  expect(cal.ece_after).toBeLessThan(0.05);
  expect(first.stored).toBe(true);
  const version = h.app.config.pipelines[0]!.version;
  const { mappings: stored } = await readCalibrations(
    h.app.database.db,
    "gleaner",
    "shops",
    version,
  );
  expect(stored).toHaveLength(1);
  expect(stored[0]).toMatchObject({ backend: "primary", column: "city", samples: ROWS });
  const calibrated = stored[0]!.points[0]![1];
  expect(calibrated).toBeGreaterThan(0.45);
  expect(calibrated).toBeLessThan(0.55);

  // The next eval applies the stored mapping to fresh answers (out of sample).
  const second = await evaluate();
  expect(second.report.calibration.after_basis).toBe("stored");
  expect(second.report.calibration.ece_before).toBeCloseTo(0.4, 3);
  expect(second.report.calibration.ece_after).toBeLessThan(0.05);
  console.error(
    `calibration: ECE before ${cal.ece_before}, after ${cal.ece_after} (in sample); next eval: ` +
      `before ${second.report.calibration.ece_before}, after ${second.report.calibration.ece_after} (stored mapping)`,
  );

  // The pipeline's own runs settle calibrated confidences, the raw one kept; the user's table
  // was never touched by the evals.
  expect(await h.query("select count(*)::int as n from shops")).toEqual([{ n: 0 }]);
  await h.query("insert into shops (id, name) values (2, 'Shop 2'), (3, 'Shop 3')");
  await h.sweep();
  await h.drain(60_000);
  const rows = await h.query<{ id: number; conf: number; col: Record<string, unknown> }>(
    "select id, enrichment_confidence as conf, enrichment_state->'columns'->'city' as col from shops order by id",
  );
  for (const row of rows) {
    expect(row.col).toMatchObject({ confidence: calibrated, raw_confidence: 0.9 });
    expect(row.conf).toBeCloseTo(calibrated, 5);
  }

  // A mapping learnt for another version of the pipeline (another prompt or model) is not
  // applied: the values settle with the confidence the stage reported.
  await h.query(
    "update gleaner.calibrations set version = 'an-older-recipe' where pipeline = 'shops'",
  );
  await h.query("insert into shops (id, name) values (4, 'Shop 4')");
  await h.sweep();
  await h.drain(60_000);
  const [raw] = await h.query<{ conf: number; col: Record<string, unknown> }>(
    "select enrichment_confidence as conf, enrichment_state->'columns'->'city' as col from shops where id = 4",
  );
  expect(raw!.conf).toBeCloseTo(0.9, 5);
  expect(raw!.col).not.toHaveProperty("raw_confidence");
}, 240_000);
