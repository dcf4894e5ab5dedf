import { sql } from "kysely";
import type { Db } from "../db/connect-database.ts";

export type CostGrouping = "stage" | "backend" | "day" | "row";

export interface CostLine {
  /** The stage, the backend (and its model), the UTC day or the row key. */
  group: string;
  calls: number;
  input_tokens: number;
  output_tokens: number;
  cost_usd: number;
}

const GROUP_BY: Record<CostGrouping, ReturnType<typeof sql>> = {
  stage: sql`l.stage`,
  backend: sql`l.backend || ' (' || l.model || ')'`,
  day: sql`to_char(date_trunc('day', l.at, 'UTC'), 'YYYY-MM-DD')`,
  row: sql`k.row_key`,
};

/**
 * Each line once per row it was for (`k.row_key`), with its rows in `r.keys`: a line per call
 * names its rows in row_keys and is shared among them equally (the report divides by
 * `cardinality(r.keys)`); a line written per row (before migration 000020) is that row's share
 * already; a rolled-up line belongs to no row.
 */
const LINE_ROWS = sql`cross join lateral (
      select coalesce(l.row_keys, array[coalesce(l.row_key, '(rolled up)')]) as keys
    ) r
    cross join lateral unnest(r.keys) as k(row_key)`;

/**
 * What `pipeline` spent, from the cost ledger (migrations/000011), grouped. A plain read of
 * settled calls through the (pipeline, at) index; nothing is locked.
 */
export async function readCostReport(
  db: Db,
  schema: string,
  pipeline: string,
  by: CostGrouping,
): Promise<CostLine[]> {
  // Per row, each line is shared among its rows; otherwise each line counts whole.
  const share = by === "row" ? sql`/ cardinality(r.keys)` : sql``;
  const { rows } = await sql<CostLine>`
    select ${GROUP_BY[by]} as "group",
           sum(l.calls ${share})::float8 as calls,
           round(sum(l.input_tokens ${share}))::float8 as input_tokens,
           round(sum(l.output_tokens ${share}))::float8 as output_tokens,
           sum(l.cost_usd ${share})::float8 as cost_usd
    from ${sql.table(`${schema}.cost_ledger`)} l
    ${by === "row" ? LINE_ROWS : sql``}
    where l.pipeline = ${pipeline}
    group by 1
    order by ${by === "day" ? sql`1` : sql`5 desc, 1`}
  `.execute(db);
  return rows.map((r) => ({ ...r, calls: Math.round(r.calls * 1000) / 1000 }));
}
