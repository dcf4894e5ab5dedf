import { sql } from "kysely";
import type { Db } from "../db/connect-database.ts";

export interface StageHistory {
  stage: string;
  model: string;
  /** Rows the ledger holds for this stage and model. */
  rows: number;
  /** Per row: output tokens, input tokens and cost of the calls made for it. */
  outputTokensPerRow: number;
  inputTokensPerRow: number;
  costPerRow: number;
}

/**
 * What each stage of `pipeline` really used per row, from the cost ledger: the answer sizes
 * `gleaner estimate` expects once calls were made. A plain read; nothing is locked.
 */
export async function readStageHistory(
  db: Db,
  schema: string,
  pipeline: string,
): Promise<StageHistory[]> {
  const { rows } = await sql<{
    stage: string;
    model: string;
    rows: number;
    out: number;
    inp: number;
    cost: number;
  }>`
    select stage, model, sum(n)::float8 as rows,
           (sum(output_tokens) / sum(n))::float8 as out,
           (sum(input_tokens) / sum(n))::float8 as inp,
           (sum(cost_usd) / sum(n))::float8 as cost
    from (
      -- A line per call is shared among its rows; a line per row (before migration 000020) is
      -- one row's share; rolled-up lines (neither) say nothing per row.
      select stage, model, output_tokens, input_tokens, cost_usd,
             coalesce(cardinality(row_keys), 1) as n
      from ${sql.table(`${schema}.cost_ledger`)}
      where pipeline = ${pipeline} and (row_keys is not null or row_key is not null)
    ) l
    group by stage, model
  `.execute(db);
  return rows.map((r) => ({
    stage: r.stage,
    model: r.model,
    rows: r.rows,
    outputTokensPerRow: r.out,
    inputTokensPerRow: r.inp,
    costPerRow: r.cost,
  }));
}
