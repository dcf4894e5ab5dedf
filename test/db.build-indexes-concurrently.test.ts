import pg from "pg";
import { describe, expect, it } from "vitest";
import { buildIndexesConcurrently } from "../src/db/build-indexes-concurrently.ts";
import { migrate } from "../src/db/migrate.ts";
import { waitFor } from "./support/gleaner-process.ts";
import { useItemsDatabase } from "./support/items-database.ts";

/**
 * Upgrades that add an index to an existing table, on a real PostgreSQL: `migrate` builds it
 * with CREATE INDEX CONCURRENTLY before its install transaction, so writers keep writing while
 * it builds, and it repairs an index a build cut short left invalid.
 */

const items = useItemsDatabase("build_indexes", { rows: 2000 });
const { config, q } = items;

async function index(name: string): Promise<{ valid: boolean; def: string } | undefined> {
  const [row] = await q<{ valid: boolean; def: string }>(
    `select i.indisvalid as valid, pg_get_indexdef(i.indexrelid) as def
       from pg_index i join pg_class c on c.oid = i.indexrelid where c.relname = $1`,
    [name],
  );
  return row;
}

describe("buildIndexesConcurrently (through migrate)", () => {
  it("builds an upgrade's new index concurrently: a writer is not held while it waits and builds", async () => {
    expect(await index("gleaner_items_version")).toBeUndefined();
    // A transaction that wrote to the table and stays open: any index build must wait for it,
    // which makes the build observable, and shows who else has to wait behind it.
    const holder = new pg.Client({ connectionString: items.url });
    const writer = new pg.Client({ connectionString: items.url });
    await holder.connect();
    await writer.connect();
    try {
      await holder.query("begin");
      await holder.query("insert into items (name) values ('held')");
      const migrating = migrate(items.database, config("    on_version_change: reprocess"));
      const seen = await waitFor("a concurrent index build", async () => {
        const [row] = await q<{ command: string; phase: string }>(
          `select command, phase from pg_stat_progress_create_index
             where relid = 'public.items'::regclass`,
        );
        return row;
      });
      expect(seen.command).toBe("CREATE INDEX CONCURRENTLY");
      // A plain CREATE INDEX would queue its share lock ahead of this insert, which would wait.
      await writer.query("set lock_timeout = '5s'");
      await writer.query("insert into items (name) values ('not held')");
      await holder.query("commit");
      await migrating;
    } finally {
      await holder.end();
      await writer.end();
    }
    const built = await index("gleaner_items_version");
    expect(built?.valid).toBe(true);
    expect(built?.def).toContain("->> 'version'");
    expect((await q("select 1 from items where name = 'not held'")).length).toBe(1);
  });

  it("drops an index a cut-short build left invalid and builds it again", async () => {
    await q("drop index gleaner_items_failures");
    // A concurrent build that fails (duplicate values for a unique index) leaves its index
    // behind, invalid, as a killed migrator's would.
    await expect(
      q("create unique index concurrently gleaner_items_failures on items ((1))"),
    ).rejects.toThrow(/could not create unique index/);
    expect((await index("gleaner_items_failures"))?.valid).toBe(false);
    // The pipeline's DDL is unchanged, so the install transaction alone would do nothing.
    await migrate(items.database, config("    on_version_change: reprocess"));
    const repaired = await index("gleaner_items_failures");
    expect(repaired?.valid).toBe(true);
    expect(repaired?.def).toContain("enrichment_status");
  });

  it("rebuilds the review index for a new review_below, concurrently, and the install keeps it", async () => {
    const next = config("    on_version_change: reprocess\n    review_below: 0.75");
    expect(await buildIndexesConcurrently(items.database.db, next.pipelines[0]!)).toEqual([
      "gleaner_items_review",
    ]);
    const oid = async () =>
      (await q<{ oid: number }>("select 'public.gleaner_items_review'::regclass::oid as oid"))[0]
        ?.oid;
    const built = await oid();
    // Its comment says what it was built for, so the install transaction does not rebuild it.
    await migrate(items.database, next);
    expect(await oid()).toBe(built);
    const review = await index("gleaner_items_review");
    expect(review?.valid).toBe(true);
    expect(review?.def).toContain("0.75");
    const [comment] = await q<{ c: string }>(
      "select obj_description('public.gleaner_items_review'::regclass, 'pg_class') as c",
    );
    expect(comment?.c).toBe("review_below 0.75");
  });
});
