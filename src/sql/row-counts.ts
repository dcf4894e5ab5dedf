import { sql } from "kysely";
import type { Db } from "../db/connect-database.ts";

/**
 * Per-status counts kept by the pipeline tables' statement triggers as insert-only deltas.
 * Reading sums a handful of rows per status, whatever the size of the table.
 */
export async function readRowCounts(
  db: Db,
  schema: string,
  pipeline: string,
): Promise<Record<string, number>> {
  const rows = await db
    .withSchema(schema)
    .selectFrom("row_counts")
    .select(["status", (eb) => eb.fn.sum<number>("n").as("n")])
    .where("pipeline", "=", pipeline)
    .groupBy("status")
    .execute();
  return Object.fromEntries(rows.map((r) => [r.status, Number(r.n)]));
}

/**
 * Folds the deltas into one row per status.
 *
 * Why it is safe concurrently: the delete and the insert are one statement. A second compactor
 * blocks on the rows the first deletes, then finds them gone and folds only newer deltas;
 * writers only ever insert, so they never wait on it.
 */
export async function compactRowCounts(db: Db, schema: string, pipeline: string): Promise<void> {
  await sql`
    with gone as (
      delete from ${sql.id(schema, "row_counts")} where pipeline = ${pipeline}
      returning status, n
    )
    insert into ${sql.id(schema, "row_counts")} (pipeline, status, n)
    select ${pipeline}, status, sum(n) from gone group by status having sum(n) <> 0
  `.execute(db);
}
