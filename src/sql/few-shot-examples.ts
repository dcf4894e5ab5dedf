import { sql } from "kysely";
import type { PipelineConfig } from "../config/config-types.ts";
import type { Db } from "../db/connect-database.ts";
import { REVIEWED_PATH } from "../db/pipeline-ddl.ts";
import { stateColumns } from "../db/state-columns.ts";

/**
 * The statements behind few-shot examples (pipelines.<p>.examples, src/stages/few-shot-examples.ts):
 * the latest reviewed values of a pipeline's table, and the examples section each stage last
 * used (<schema>.few_shot_examples, migrations/000019).
 */

/** A row with values a person approved or edited: its fields, and those reviewed values. */
export interface ReviewedRow {
  /** Every column of the row but the state (inputs, outputs). */
  fields: Record<string, unknown>;
  /** Output → the value a person approved or edited, as the table holds it now. */
  answers: Record<string, unknown>;
  /** The latest review of those values (ISO). */
  at: string;
}

/**
 * The `limit` rows most recently reviewed with one of `outputs` approved or edited, newest first.
 *
 * Why it is cheap on a large table: the `@?` test is, word for word, the predicate of the
 * partial index `<pipeline>_reviewed` (src/db/pipeline-ddl.ts) on reviewed rows, so only rows a person touched are read (few, whatever the table's size), and
 * the ordering runs over those. A plain read: no lock, and a value reviewed meanwhile simply
 * shows in the next prompt.
 */
export async function latestReviewedRows(
  db: Db,
  p: PipelineConfig,
  outputs: readonly string[],
  limit: number,
): Promise<ReviewedRow[]> {
  const state = stateColumns(p).state;
  const stateNames = new Set<string>(Object.values(stateColumns(p)));
  const table = sql.table(`${p.table.schema}.${p.table.name}`);
  const result = await sql<{ row: Record<string, unknown>; columns: Record<string, unknown> }>`
    select to_jsonb(t) as row, t.${sql.ref(state)} -> 'columns' as columns
    from ${table} t
    where t.${sql.ref(state)} @? ${sql.lit(REVIEWED_PATH)}::jsonpath
      and exists (
        select 1 from jsonb_each(t.${sql.ref(state)} -> 'columns') c
        where c.key = any(${[...outputs]}::text[]) and c.value ->> 'origin' = 'human'
          and c.value -> 'review' ->> 'action' in ('approved', 'edited'))
    order by (
      select max(c.value -> 'review' ->> 'at') from jsonb_each(t.${sql.ref(state)} -> 'columns') c
      where c.value ->> 'origin' = 'human') desc nulls last
    limit ${limit}
  `.execute(db);
  return result.rows.map(({ row, columns }) => {
    const answers: Record<string, unknown> = {};
    let at = "";
    for (const name of outputs) {
      const provenance = columns?.[name] as
        { origin?: string; review?: { action?: string; at?: string } } | undefined;
      const action = provenance?.review?.action;
      if (provenance?.origin !== "human" || (action !== "approved" && action !== "edited"))
        continue;
      const value = row[name];
      if (value === null || value === undefined) continue;
      answers[name] = value;
      if ((provenance.review?.at ?? "") > at) at = provenance.review?.at ?? "";
    }
    const fields = Object.fromEntries(Object.entries(row).filter(([k]) => !stateNames.has(k)));
    return { fields, answers, at };
  });
}

export interface StoredExamples {
  section: string;
  examples: number;
}

/**
 * The section this stage last used, if it must be kept: only while the stage has a Batch API
 * request not yet handed back to its rows (created in the last `maxWaitMs`: a request whose
 * rows never came back must not freeze the examples for ever). Undefined: build them afresh.
 */
export async function frozenExamples(
  db: Db,
  schema: string,
  pipeline: string,
  stage: string,
  maxWaitMs: number,
): Promise<StoredExamples | undefined> {
  const result = await sql<StoredExamples>`
    select e.section, e.examples from ${sql.table(`${schema}.few_shot_examples`)} e
    where e.pipeline = ${pipeline} and e.stage = ${stage}
      and exists (
        select 1 from ${sql.table(`${schema}.llm_batch_requests`)} r
        where r.pipeline = ${pipeline} and r.stage = ${stage} and r.consumed_at is null
          and r.created_at > now() - make_interval(secs => ${maxWaitMs / 1000}))
  `.execute(db);
  return result.rows[0];
}

/**
 * Records the section a stage now uses. Why it is safe: one row per (pipeline, stage), an
 * upsert on its primary key; two processes writing at once both succeed and the last one's
 * section stands. They built it from the same reviewed rows unless a review landed between
 * their reads; then a batch row may resume with the other section, miss its answer and ask once
 * more — a retry, never a wrong answer, since the answer is found by the exact question.
 */
export async function storeExamples(
  db: Db,
  schema: string,
  pipeline: string,
  stage: string,
  stored: StoredExamples,
): Promise<void> {
  await sql`
    insert into ${sql.table(`${schema}.few_shot_examples`)} (pipeline, stage, section, examples)
    values (${pipeline}, ${stage}, ${stored.section}, ${stored.examples})
    on conflict (pipeline, stage) do update
      set section = excluded.section, examples = excluded.examples, updated_at = now()
      where few_shot_examples.section is distinct from excluded.section
  `.execute(db);
}
