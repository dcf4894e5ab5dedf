import { describe, expect, it } from "vitest";
import type { GleanerConfig } from "../src/config/config-types.ts";
import { migrate } from "../src/db/migrate.ts";
import { useItemsDatabase } from "./support/items-database.ts";

/**
 * When an upgrade recounts a pipeline's counters, on a real PostgreSQL: only when they could be
 * wrong. A marker delta planted in gleaner.row_counts shows which: a recount replaces it, an
 * upgrade that keeps the counters leaves it.
 */

const items = useItemsDatabase("counters_current", { rows: 300 });
const { config, q } = items;

async function pending(): Promise<number> {
  const [row] = await q<{ n: string | null }>(
    "select sum(n)::text as n from gleaner.row_counts where pipeline = 'items' and status = 'pending'",
  );
  return Number(row?.n ?? 0);
}

/** Plants a wrong delta, marks the DDL as older (as an upgrade finds it) and migrates `next`. */
async function upgradeWithMarker(next: GleanerConfig): Promise<void> {
  await q("insert into gleaner.row_counts (pipeline, status, n) values ('items', 'pending', 1000)");
  await q("update gleaner.pipelines set ddl_hash = 'older' where name = 'items'");
  await migrate(items.database, next);
  const [row] = await q<{ ddl_hash: string }>(
    "select ddl_hash from gleaner.pipelines where name = 'items'",
  );
  expect(row?.ddl_hash).not.toBe("older");
}

describe("countersAreCurrent (through migrate)", () => {
  it("keeps the counters when the upgrade counts the same way (no scan holding writers)", async () => {
    expect(await pending()).toBe(300);
    await upgradeWithMarker(config("    on_version_change: reprocess"));
    expect(await pending()).toBe(1300);
    // The triggers still count: the next insert is added to what was there.
    await q("insert into items (name) values ('one more')");
    expect(await pending()).toBe(1301);
  });

  it("recounts when the counting changed (min_confidence is in the count function)", async () => {
    await upgradeWithMarker(config("    on_version_change: reprocess\n    min_confidence: 0.8"));
    expect(await pending()).toBe(301);
  });

  it("recounts when a count trigger was disabled, since it missed writes", async () => {
    await q("alter table items disable trigger gleaner_items_count_ins");
    await q("insert into items (name) values ('uncounted')");
    await q("alter table items enable trigger gleaner_items_count_ins");
    expect(await pending()).toBe(301);
    await q("alter table items disable trigger gleaner_items_count_ins");
    await upgradeWithMarker(config("    on_version_change: reprocess\n    min_confidence: 0.8"));
    expect(await pending()).toBe(302);
    // The install replaced the trigger, enabled again.
    await q("insert into items (name) values ('counted')");
    expect(await pending()).toBe(303);
  });

  it("counts nothing from a table the pipeline moved away from, though it keeps its triggers", async () => {
    const moved = config("", "public.items_moved");
    await migrate(items.database, moved);
    expect(await pending()).toBe(0);
    // The old table is the user's again: its writes are not the pipeline's rows.
    await q("insert into items (name) values ('left behind')");
    expect(await pending()).toBe(0);
    await q("insert into items_moved (name) values ('here'), ('there')");
    expect(await pending()).toBe(2);
  });
});
