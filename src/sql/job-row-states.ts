import { sql } from "kysely";
import type { Db } from "../db/connect-database.ts";
import type { InstalledPipeline } from "../pipeline/installed-pipeline.ts";

/** `api_job_rows` joined to the pipeline's table through its key: one index probe per row. */
function jobRows(schema: string, p: InstalledPipeline, jobId: string) {
  return sql`${sql.id(schema, "api_job_rows")} jr
    join ${sql.table(`${p.table.schema}.${p.table.name}`)} t
      on ${sql.ref(`t.${p.key}`)} = jr.row_key::${sql.raw(p.keyType)}
    where jr.job_id = ${jobId}::uuid`;
}

/** For an UPDATE of the pipeline's table `t`: restricts it to one job's rows. */
function ofJob(schema: string, p: InstalledPipeline, jobId: string) {
  return sql`from ${sql.id(schema, "api_job_rows")} jr
    where jr.job_id = ${jobId}::uuid
      and ${sql.ref(`t.${p.key}`)} = jr.row_key::${sql.raw(p.keyType)}`;
}

/**
 * Per-status counts of one job's rows, when the last of them settled, and when the first of them
 * started (the earliest `last_run.started_at` recorded: a row's latest attempt; null until one
 * has run).
 */
export async function jobStatusCounts(
  db: Db,
  schema: string,
  p: InstalledPipeline,
  jobId: string,
): Promise<{
  counts: Record<string, number>;
  lastSettledAt: Date | null;
  firstStartedAt: Date | null;
}> {
  const c = p.columns;
  const result = await sql<{
    status: string;
    n: number;
    last: Date | null;
    first: Date | null;
  }>`
    select ${sql.ref(`t.${c.status}`)} as status, count(*)::int as n,
      max(${sql.ref(`t.${c.enrichedAt}`)}) as last,
      min((${sql.ref(`t.${c.state}`)} #>> '{last_run,started_at}')::timestamptz) as first
    from ${jobRows(schema, p, jobId)}
    group by 1
  `.execute(db);
  const counts: Record<string, number> = {};
  let last: Date | null = null;
  let first: Date | null = null;
  for (const r of result.rows) {
    counts[r.status] = r.n;
    if (r.last && (!last || r.last > last)) last = r.last;
    if (r.first && (!first || r.first < first)) first = r.first;
  }
  return { counts, lastSettledAt: last, firstStartedAt: first };
}

export interface JobResultRow {
  key: string;
  status: string;
  confidence: number | null;
  inputs: Record<string, unknown>;
  values: Record<string, unknown>;
  state: {
    columns?: Record<string, { sources?: string[]; reason?: string; confidence?: number }>;
    errors?: { class: string; message: string; stage: string; at: string }[];
  } | null;
}

/** Every row of a job with its values, confidence and state, in key order. */
export async function jobResultRows(
  db: Db,
  schema: string,
  p: InstalledPipeline,
  jobId: string,
): Promise<JobResultRow[]> {
  const c = p.columns;
  const fields = (cols: readonly string[]) =>
    sql.join(cols.map((col) => sql`${sql.lit(col)}::text, ${sql.ref(`t.${col}`)}`));
  const result = await sql<JobResultRow>`
    select jr.row_key as key, ${sql.ref(`t.${c.status}`)} as status,
      ${sql.ref(`t.${c.confidence}`)} as confidence,
      jsonb_build_object(${fields(p.inputs)}) as inputs,
      jsonb_build_object(${fields(p.outputs.map((o) => o.name))}) as values,
      ${sql.ref(`t.${c.state}`)} as state
    from ${jobRows(schema, p, jobId)}
    order by ${sql.ref(`t.${p.key}`)}
  `.execute(db);
  return result.rows;
}

/**
 * Cancels a job's unsettled rows: they become `exhausted` (given up until a user resets them),
 * with the cancellation recorded in their state. Settled rows keep their results.
 *
 * Why it is safe: clearing the claim fences off a worker holding one of the rows, exactly as a
 * user's reset does; its late write matches nothing.
 */
export async function cancelJobRows(
  db: Db,
  schema: string,
  p: InstalledPipeline,
  jobId: string,
): Promise<number> {
  const c = p.columns;
  const result = await sql`
    update ${sql.table(`${p.table.schema}.${p.table.name}`)} t set
      ${sql.id(c.status)} = 'exhausted',
      ${sql.id(c.nextAt)} = null,
      ${sql.id(c.claim)} = null,
      ${sql.id(c.state)} = jsonb_set(coalesce(${sql.ref(`t.${c.state}`)}, '{}'), '{cancelled}',
        jsonb_build_object('at', now(), 'job', ${jobId}::text))
    ${ofJob(schema, p, jobId)}
      and ${sql.ref(`t.${c.status}`)} in ('pending', 'queued', 'running', 'failed')
  `.execute(db);
  return Number(result.numAffectedRows ?? 0);
}

/** Resumes the rows a cancel stopped: pending again, attempts reset. Fenced like a reset. */
export async function resumeJobRows(
  db: Db,
  schema: string,
  p: InstalledPipeline,
  jobId: string,
): Promise<number> {
  const c = p.columns;
  const result = await sql`
    update ${sql.table(`${p.table.schema}.${p.table.name}`)} t set
      ${sql.id(c.status)} = 'pending',
      ${sql.id(c.attempts)} = 0,
      ${sql.id(c.nextAt)} = now(),
      ${sql.id(c.claim)} = null,
      ${sql.id(c.state)} = ${sql.ref(`t.${c.state}`)} - 'cancelled'
    ${ofJob(schema, p, jobId)}
      and ${sql.ref(`t.${c.status}`)} = 'exhausted'
      and ${sql.ref(`t.${c.state}`)} ? 'cancelled'
  `.execute(db);
  return Number(result.numAffectedRows ?? 0);
}

/**
 * Deletes a job's rows from the pipeline's table: those not `done` (a job given up on), or all of
 * them. Their links in `api_job_rows` go in the same statement. Returns the number deleted.
 *
 * Why it is safe against a worker holding one of the rows: the DELETE takes each row's lock, so
 * it waits for a write in flight and then removes what that write left. A worker's later writes
 * are fenced by the row's claim (`write-row-states.ts`): a deleted row matches nothing, and the
 * guarded writer drops it from the job (`guarded-writer.ts`). A sweep claims with SKIP LOCKED and
 * never sees the row again. The count trigger records the deleted rows' statuses.
 */
export async function deleteJobRows(
  db: Db,
  schema: string,
  p: InstalledPipeline,
  jobId: string,
  which: "unfinished" | "all",
): Promise<number> {
  const c = p.columns;
  const result = await sql<{ n: number }>`
    with removed as (
      delete from ${sql.table(`${p.table.schema}.${p.table.name}`)} t
      using ${sql.id(schema, "api_job_rows")} jr
      where jr.job_id = ${jobId}::uuid
        and ${sql.ref(`t.${p.key}`)} = jr.row_key::${sql.raw(p.keyType)}
        ${which === "all" ? sql`` : sql`and ${sql.ref(`t.${c.status}`)} is distinct from 'done'`}
      returning jr.row_key
    ), unlinked as (
      delete from ${sql.id(schema, "api_job_rows")} jr
      using removed r
      where jr.job_id = ${jobId}::uuid and jr.row_key = r.row_key
    )
    select count(*)::int as n from removed
  `.execute(db);
  return result.rows[0]?.n ?? 0;
}
