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
  stage: sql`stage`,
  backend: sql`backend || ' (' || model || ')'`,
  day: sql`to_char(date_trunc('day', at, 'UTC'), 'YYYY-MM-DD')`,
  row: sql`coalesce(row_key, '(rolled up)')`,
};

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
  const { rows } = await sql<CostLine>`
    select ${GROUP_BY[by]} as "group",
           sum(calls)::float8 as calls,
           round(sum(input_tokens))::float8 as input_tokens,
           round(sum(output_tokens))::float8 as output_tokens,
           sum(cost_usd)::float8 as cost_usd
    from ${sql.table(`${schema}.cost_ledger`)}
    where pipeline = ${pipeline}
    group by 1
    order by ${by === "day" ? sql`1` : sql`5 desc, 1`}
  `.execute(db);
  return rows.map((r) => ({ ...r, calls: Math.round(r.calls * 1000) / 1000 }));
}
