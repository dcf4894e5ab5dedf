import pg from "pg";
import { describe, expect, it } from "vitest";
import type { GleanerConfig } from "../src/config/config-types.ts";
import { parseConfig } from "../src/config/load-config.ts";
import { migrate } from "../src/db/migrate.ts";
import { waitFor } from "./support/gleaner-process.ts";
import { useItemsDatabase } from "./support/items-database.ts";

/**
 * Which lock an upgrade's install transaction takes on a real PostgreSQL: readers of the table
 * keep reading while it reinstalls triggers and recounts, unless a statement really needs them
 * out (a column to add, an index to drop).
 */

const items = useItemsDatabase("install_lock", {
  rows: 500,
  extra: "    on_version_change: reprocess",
});
const { config, q } = items;

/**
 * Runs `migrate` with `next` while an open transaction that wrote to the table holds it, so the
 * install's table lock waits in the queue where it can be seen: returns that lock's mode and
 * whether a reader (lock_timeout 1 s) could read meanwhile. Readers queue behind a waiting
 * ACCESS EXCLUSIVE request and pass a SHARE ROW EXCLUSIVE one.
 */
async function upgradeWhileWritten(
  next: GleanerConfig,
): Promise<{ mode: string; readerRead: boolean }> {
  await q("update gleaner.pipelines set ddl_hash = 'older' where name = 'items'");
  const holder = new pg.Client({ connectionString: items.url });
  const reader = new pg.Client({ connectionString: items.url });
  await holder.connect();
  await reader.connect();
  try {
    await holder.query("begin");
    await holder.query("insert into items (name) values ('held')");
    // One long wait, so the lock request stays queued while the reader tries.
    const migrating = migrate(items.database, next, {
      lockPatience: { timeoutMs: 60_000, attempts: 1, pauseMs: 0 },
    });
    const mode = await waitFor("the install's lock request, queued", async () => {
      const [row] = await q<{ mode: string }>(
        `select mode from pg_locks
           where relation = 'public.items'::regclass and not granted`,
      );
      return row?.mode;
    });
    await reader.query("set lock_timeout = '1s'");
    const readerRead = await reader.query("select count(*) from items").then(
      () => true,
      (error: { code?: string }) => {
        if (error.code !== "55P03") throw error;
        return false;
      },
    );
    await holder.query("commit");
    await migrating;
    return { mode, readerRead };
  } finally {
    await holder.end();
    await reader.end();
  }
}

describe("lockTableForInstall (through migrate)", () => {
  it("keeps writers out but lets readers read while an upgrade reinstalls and recounts", async () => {
    const seen = await upgradeWhileWritten(config("    on_version_change: reprocess"));
    expect(seen.mode).toBe("ShareRowExclusiveLock");
    expect(seen.readerRead).toBe(true);
    // The install ran whole: the hash is current again and the counters match the table.
    const [pipeline] = await q<{ ddl_hash: string }>(
      "select ddl_hash from gleaner.pipelines where name = 'items'",
    );
    expect(pipeline?.ddl_hash).not.toBe("older");
    const [counted] = await q<{ n: string }>(
      "select sum(n)::text as n from gleaner.row_counts where pipeline = 'items' and status = 'pending'",
    );
    expect(counted?.n).toBe("501");
  });

  it("waits for the table a little at a time, letting writers through, then gives up clearly", async () => {
    await q("update gleaner.pipelines set ddl_hash = 'older' where name = 'items'");
    const holder = new pg.Client({ connectionString: items.url });
    const writer = new pg.Client({ connectionString: items.url });
    await holder.connect();
    await writer.connect();
    try {
      // A transaction left open after writing: the install cannot have the table while it lasts.
      await holder.query("begin");
      await holder.query("insert into items (name) values ('held')");
      const migrating = migrate(items.database, config("    on_version_change: reprocess"), {
        lockPatience: { timeoutMs: 100, attempts: 4, pauseMs: 50 },
      }).then(
        () => undefined,
        (error: unknown) => error as Error,
      );
      await waitFor("the install's lock request, queued", async () => {
        const rows = await q(
          "select 1 from pg_locks where relation = 'public.items'::regclass and not granted",
        );
        return rows.length > 0 ? true : undefined;
      });
      // A write queued behind the install's lock request goes through when that request times
      // out, with the holder still open: nothing waits on the install for longer than that.
      await writer.query("set lock_timeout = '5s'");
      await writer.query("insert into items (name) values ('written meanwhile')");
      const error = await migrating;
      expect(error?.message).toMatch(
        /could not lock table public\.items to install Gleaner's DDL: other transactions held it through 4 waits of 100 ms/,
      );
    } finally {
      await holder.query("commit");
      await holder.end();
      await writer.end();
    }
    const [pipeline] = await q<{ ddl_hash: string }>(
      "select ddl_hash from gleaner.pipelines where name = 'items'",
    );
    expect(pipeline?.ddl_hash).toBe("older");
    await migrate(items.database, config("    on_version_change: reprocess"));
  });

  it("keeps readers out too when the upgrade drops an index", async () => {
    // Drift turned off: the version index goes, and DROP INDEX needs the table to itself.
    const seen = await upgradeWhileWritten(config());
    expect(seen.mode).toBe("AccessExclusiveLock");
    expect(seen.readerRead).toBe(false);
    expect(await q("select 1 from pg_class where relname = 'gleaner_items_version'")).toHaveLength(
      0,
    );
  });

  it("keeps readers out when a column is added", async () => {
    const withNote = parseConfig(
      `
llm:
  backends:
    - { name: primary, base_url: "http://127.0.0.1:9/v1", model: fake }
pipelines:
  items:
    table: public.items
    inputs: [name]
    outputs:
      label: { type: text, description: "A label" }
      note: { type: text, description: "A note" }
    stages:
      - { name: fill, kind: llm, backends: [primary], prompt: "{{name}}", outputs: [label, note] }
`,
      { env: { DATABASE_URL: items.url } },
    );
    const seen = await upgradeWhileWritten(withNote);
    expect(seen.mode).toBe("AccessExclusiveLock");
    expect(await q("select note from items limit 1")).toHaveLength(1);
  });
});
