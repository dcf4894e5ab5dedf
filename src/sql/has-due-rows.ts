import { sql } from "kysely";
import type { Db } from "../db/connect-database.ts";
import type { InstalledPipeline } from "../pipeline/installed-pipeline.ts";

/** Whether any row is due now (one probe of the due index) and how old the oldest is. */
export async function oldestDue(
  db: Db,
  p: InstalledPipeline,
  status?: string,
): Promise<{ due: boolean; ageSeconds: number | null }> {
  const c = p.columns;
  const filter = status ? sql`and ${sql.id(c.status)} = ${status}` : sql``;
  const result = await sql<{ oldest: Date | null; age: number | null }>`
    select min(${sql.id(c.nextAt)}) as oldest,
      extract(epoch from now() - min(${sql.id(c.nextAt)}))::float8 as age
    from ${sql.table(`${p.table.schema}.${p.table.name}`)}
    where ${sql.id(c.nextAt)} <= now() ${filter}
  `.execute(db);
  const row = result.rows[0];
  return { due: row?.oldest != null, ageSeconds: row?.age ?? null };
}
