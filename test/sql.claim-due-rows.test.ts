import { afterAll, beforeAll, beforeEach, expect, it } from "vitest";
import { ALIVE_WITHIN_MS } from "../src/core/worker-liveness.ts";
import { claimDueRows } from "../src/sql/claim-due-rows.ts";
import { startHarness, type Harness } from "./support/gleaner-harness.ts";

/**
 * How the sweep's claim splits the due rows into jobs: job_size rows to a job, unless the live
 * worker processes (gleaner.workers) would then not each get one; never under one batch.
 */

let h: Harness;

beforeAll(async () => {
  h = await startHarness(
    "claim_due_rows",
    `
llm:
  backends:
    - { name: fake, base_url: "http://127.0.0.1:9/v1", model: fake }
pipelines:
  items:
    table: public.items
    inputs: [name]
    batch_size: 10
    job_size: 100
    outputs: { label: { type: text, description: "A label" } }
    stages:
      - { name: label, kind: llm, backends: [fake], prompt: "Label {{name}}", outputs: [label] }
`,
  );
}, 60_000);

afterAll(async () => {
  await h?.close();
});

beforeEach(async () => {
  await h.query("truncate items");
  await h.query("delete from gleaner.workers");
  await h.query("delete from graphile_worker._private_jobs");
});

/** Registers `live` worker processes beating now and one that stopped beating long ago. */
async function fleet(live: number): Promise<void> {
  await h.query(
    `insert into gleaner.workers (id, host, pid, heartbeat_at)
     select 'w' || i, 'host', i, now() from generate_series(1, $1) i
     union all select 'dead', 'host', 0, now() - $2 * interval '2 millisecond'`,
    [live, ALIVE_WITHIN_MS],
  );
}

/** Claims every due row of 200 and returns the rows of each job enqueued. */
async function jobSizes(): Promise<number[]> {
  await h.query("insert into items (name) select 'item' || i from generate_series(1, 200) i");
  const pipeline = h.app.runtime.pipelines.get("items")!.pipeline;
  const { claimed } = await claimDueRows(h.app.database.db, h.app.config, pipeline, 10_000);
  expect(claimed).toBe(200);
  const jobs = await h.query<{ n: number }>(
    `select json_array_length(payload -> 'keys') as n from graphile_worker._private_jobs order by n desc, id`,
  );
  return jobs.map((j) => j.n);
}

it("makes jobs of job_size when no live process or one would take them", async () => {
  expect(await jobSizes()).toEqual([100, 100]);
  await h.query("truncate items");
  await h.query("delete from graphile_worker._private_jobs");
  await fleet(1);
  expect(await jobSizes()).toEqual([100, 100]);
});

it("gives each live process a job when job_size would leave some idle", async () => {
  await fleet(4);
  expect(await jobSizes()).toEqual([50, 50, 50, 50]);
});

it("never makes a job smaller than one batch", async () => {
  await fleet(40);
  expect(await jobSizes()).toEqual(Array(20).fill(10));
});
