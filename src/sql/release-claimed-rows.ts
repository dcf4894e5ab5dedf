import { sql } from "kysely";
import type { Db } from "../db/connect-database.ts";
import type { InstalledPipeline } from "../pipeline/installed-pipeline.ts";
import { heldByClaim } from "./start-claimed-rows.ts";

/**
 * On a graceful shutdown, a job hands its unfinished rows back: pending, due now, claim cleared,
 * and the interrupted attempt not counted. The state keeps the stages already done, so the next
 * worker resumes after them.
 *
 * Why it is safe: fenced by the claim like every job write; a row already taken back or reset
 * is not touched.
 */
export async function releaseClaimedRows(
  db: Db,
  p: InstalledPipeline,
  claim: string,
  keys: readonly string[],
): Promise<number> {
  const c = p.columns;
  const result = await sql`
    update ${sql.table(`${p.table.schema}.${p.table.name}`)} t set
      ${sql.id(c.status)} = 'pending',
      ${sql.id(c.claim)} = null,
      ${sql.id(c.nextAt)} = now(),
      ${sql.id(c.attempts)} = greatest(${sql.ref(`t.${c.attempts}`)} - 1, 0)
    where ${heldByClaim(p, claim, keys)}
  `.execute(db);
  return Number(result.numAffectedRows ?? 0);
}

/**
 * After a job failed (not on shutdown), its rows come back when their lease runs out, as if its
 * worker had died: rows still `queued` (never started) would otherwise wait for queue_timeout.
 * The attempt counts, as for a lost worker.
 *
 * Why it is safe: fenced by the claim; it only ever brings a deadline closer, never pushes one
 * further away.
 */
export async function leaseClaimedRowsBack(
  db: Db,
  p: InstalledPipeline,
  claim: string,
  keys: readonly string[],
): Promise<number> {
  const c = p.columns;
  const result = await sql`
    update ${sql.table(`${p.table.schema}.${p.table.name}`)} t set
      ${sql.id(c.nextAt)} = least(${sql.ref(`t.${c.nextAt}`)},
        now() + ${p.leaseMs} * interval '1 millisecond')
    where ${heldByClaim(p, claim, keys)}
      and ${sql.ref(`t.${c.status}`)} in ('queued', 'running')
  `.execute(db);
  return Number(result.numAffectedRows ?? 0);
}
