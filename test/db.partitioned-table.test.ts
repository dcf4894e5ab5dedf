import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readStatus } from "../src/cli/commands/status-command.ts";
import { installPipelineTable } from "../src/db/install-pipeline-table.ts";
import { STATUSES } from "../src/db/pipeline-ddl.ts";
import { answerRows, keyInSection, startFakeLlm, type FakeLlm } from "./support/fake-llm-server.ts";
import { startHarness, type Harness } from "./support/gleaner-harness.ts";

/**
 * A user table declaratively partitioned by range or by hash, through the whole loop: migrate
 * (state columns, indexes, the row-level reset trigger cloned onto every partition, the
 * statement-level count triggers with transition tables on the table and on each partition),
 * sweep, jobs, write-back, resets, and status read from the trigger-kept counters — which must
 * always equal a count of the rows, whether a statement names the table or one partition.
 */

const KINDS = {
  range: {
    partitions: ["companies_low", "companies_high"],
    ddl: `
      create table companies (
        id bigint primary key, name text, domain text, industry text, employees integer
      ) partition by range (id);
      create table companies_low partition of companies for values from (minvalue) to (1000);
      create table companies_high partition of companies for values from (1000) to (maxvalue);`,
  },
  hash: {
    partitions: ["companies_h0", "companies_h1", "companies_h2"],
    ddl: `
      create table companies (
        id bigint primary key, name text, domain text, industry text, employees integer
      ) partition by hash (id);
      create table companies_h0 partition of companies for values with (modulus 3, remainder 0);
      create table companies_h1 partition of companies for values with (modulus 3, remainder 1);
      create table companies_h2 partition of companies for values with (modulus 3, remainder 2);`,
  },
} as const;

let llm: FakeLlm;

beforeAll(async () => {
  llm = await startFakeLlm();
  llm.handle(
    answerRows((id, prompt) => {
      const key = Number(keyInSection(prompt, id));
      return {
        industry: { value: `industry ${key}`, confidence: 0.9 },
        employees: { value: key * 10, confidence: 0.9 },
      };
    }),
  );
});

afterAll(async () => {
  await llm?.close();
});

describe.each(Object.entries(KINDS))("a table partitioned by %s", (kind, table) => {
  let h: Harness;

  beforeAll(async () => {
    h = await startHarness(
      `partitioned_${kind}`,
      `
llm:
  backends: [{ name: fake, base_url: ${llm.url}, model: fake, timeout: 5s }]
worker: { poll_interval: 100ms }
pipelines:
  companies:
    table: public.companies
    inputs: [name, domain]
    outputs:
      industry:  { type: text,    description: "Primary industry" }
      employees: { type: integer, description: "Approximate headcount" }
    batch_size: 5
    stages:
      - { name: profile, kind: llm, backends: [fake], prompt: "Describe {{name}} #{{id}}", outputs: [industry, employees] }
`,
      { beforeMigrate: table.ddl },
    );
  });

  afterAll(async () => {
    await h?.close();
  });

  /** Status from the counters, checked against a count of the rows themselves. */
  async function status() {
    const pipelines = [...h.app.runtime.pipelines.values()].map((e) => e.pipeline);
    const [s] = await readStatus({ db: h.app.database.db, schema: "gleaner", pipelines });
    const counted = await h.query<{ s: string; n: number }>(
      "select enrichment_status as s, count(*)::int as n from companies group by 1",
    );
    const actual = Object.fromEntries(counted.map((r) => [r.s, r.n]));
    for (const st of STATUSES) expect(s?.[st], `${st} counter`).toBe(actual[st] ?? 0);
    return s;
  }

  it("migrates: state columns and indexes on every partition, triggers where they fire", async () => {
    const triggers = await h.query<{ rel: string; name: string }>(
      `select tgrelid::regclass::text as rel, tgname as name from pg_trigger
        where tgname like 'gleaner_companies_%' order by 1, 2`,
    );
    const on = (rel: string) => triggers.filter((t) => t.rel === rel).map((t) => t.name);
    const counts = ["count_del", "count_ins", "count_trunc", "count_upd"].map(
      (s) => `gleaner_companies_${s}`,
    );
    expect(on("companies")).toEqual([...counts, "gleaner_companies_reset"]);
    for (const partition of table.partitions)
      expect(on(partition)).toEqual([...counts, "gleaner_companies_reset"]);
    const indexes = await h.query<{ n: number }>(
      `select count(*)::int as n from pg_indexes
        where tablename = any($1) and indexdef like '%enrichment_next_at%'`,
      [table.partitions],
    );
    // The due and pending indexes on each partition.
    expect(indexes[0]?.n).toBe(table.partitions.length * 2);
  });

  it("counts inserts through the table and into one partition, sweeps, runs and writes back", async () => {
    await h.query(
      `insert into companies (id, name, domain)
         select i, 'acme' || i, 'acme' || i || '.example'
         from unnest(array[1, 2, 3, 4, 5, 6, 7, 8, 1001, 1002, 1003, 1004, 1005, 1006]) i`,
    );
    // Straight into a partition: its own count trigger counts it.
    const direct = table.partitions[table.partitions.length - 1] as string;
    await h.query(
      `insert into ${direct} (id, name, domain)
         select i, 'direct' || i, 'direct.example' from generate_series(5000, 5100) i
         where satisfies_hash_partition_or_range(i)`.replace(
        "satisfies_hash_partition_or_range(i)",
        kind === "range"
          ? "true"
          : `satisfies_hash_partition('companies'::regclass, 3, ${table.partitions.length - 1}, i::bigint)`,
      ),
    );
    const total = (await h.query<{ n: number }>("select count(*)::int as n from companies"))[0]
      ?.n as number;
    const before = await status();
    expect(before).toMatchObject({ total, pending: total, done: 0 });
    const spread = await h.query<{ p: string }>(
      "select distinct tableoid::regclass::text as p from companies",
    );
    expect(spread.length).toBe(table.partitions.length);

    await h.drain();
    expect(await status()).toMatchObject({ total, done: total, complete: total, pending: 0 });
    const rows = await h.query<{ id: string; industry: string; employees: number }>(
      "select id, industry, employees from companies",
    );
    for (const r of rows) {
      expect(r.industry).toBe(`industry ${r.id}`);
      expect(r.employees).toBe(Number(r.id) * 10);
    }
  });

  it("resets a row through the table and through its partition (the cloned row trigger)", async () => {
    const [first, second] = await h.query<{ id: string; p: string }>(
      `select id, tableoid::regclass::text as p from companies where id in (1, 1001, 2, 3)
        order by id desc limit 2`,
    );
    await h.query("update companies set industry = null where id = $1", [first?.id]);
    await h.query(`update ${second?.p} set enrichment_status = 'pending' where id = $1`, [
      second?.id,
    ]);
    const reset = await h.query<{ status: string; attempts: number; reason: string }>(
      `select enrichment_status as status, enrichment_attempts as attempts,
              enrichment_state -> 'reset' ->> 'reason' as reason
         from companies where id = any($1) order by id desc`,
      [[first?.id, second?.id]],
    );
    expect(reset).toEqual([
      { status: "pending", attempts: 0, reason: "output_cleared" },
      { status: "pending", attempts: 0, reason: "status_reset" },
    ]);
    expect(await status()).toMatchObject({ pending: 2 });
    await h.drain();
    expect(await status()).toMatchObject({ pending: 0, queued: 0, running: 0 });
  });

  it("recounts when one partition is truncated, and counts nothing from a detached one", async () => {
    const [gone, detached] = table.partitions.slice(-2) as [string, string];
    await h.query(`truncate ${gone}`);
    let s = await status();
    expect(s?.total).toBeGreaterThan(0);
    await h.query(`alter table companies detach partition ${detached}`);
    // Detaching fires no trigger: `gleaner migrate` recounts (the partition list is in the DDL).
    const entry = [...h.app.runtime.pipelines.values()][0];
    await h.app.runtime.db
      .transaction()
      .execute(async (trx) => installPipelineTable(trx, entry!.pipeline, "gleaner"));
    s = await status();
    // The detached table keeps its triggers, but its statements are not this pipeline's.
    await h.query(`update ${detached} set industry = null`);
    await h.query(`insert into ${detached} (id, name) values (999999, 'orphan')`);
    expect(await status()).toEqual(s);
  });
});
