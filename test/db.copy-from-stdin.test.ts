import pg from "pg";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { copyFromStdin } from "../src/db/copy-from-stdin.ts";
import { createTestDatabase, type TestDatabase } from "./support/test-database.ts";

/**
 * COPY FROM STDIN through the `pg` client's hooks: all rows or none, the server's error or the
 * source's own, and the connection usable afterwards in every case.
 */
let testDb: TestDatabase;
let client: pg.Client;

async function* lines(n: number, bad?: number, fail?: number): AsyncGenerator<Buffer> {
  yield Buffer.from("id,name\n");
  for (let i = 1; i <= n; i++) {
    if (i === fail) throw new Error("the disk went away");
    // A file read: now and then the source itself waits.
    if (i % 1000 === 0) await new Promise((resolve) => setImmediate(resolve));
    yield Buffer.from(`${i === bad ? "x" : i},row ${i}\n`);
  }
}

const copy = (source: AsyncIterable<Buffer>) => {
  const c = copyFromStdin("copy t (id, name) from stdin with (format csv, header true)", source);
  void client.query(c);
  return c.done;
};
const count = async () =>
  (await client.query<{ n: number }>("select count(*)::int as n from t")).rows[0]?.n;

beforeAll(async () => {
  testDb = await createTestDatabase("copy_from_stdin");
  client = new pg.Client({ connectionString: testDb.url });
  await client.connect();
  await client.query("create table t (id integer primary key, name text)");
});

afterAll(async () => {
  await client?.end();
  await testDb?.drop();
});

beforeEach(async () => {
  await client.query("truncate t");
});

describe("copyFromStdin", () => {
  it("inserts every row and reports how many", async () => {
    expect(await copy(lines(5000))).toBe(5000);
    expect(await count()).toBe(5000);
  });

  it("rejects with the server's error naming the line, inserts nothing, and the client goes on", async () => {
    const error = (await copy(lines(5000, 1234)).catch((e: unknown) => e)) as pg.DatabaseError;
    expect(error.message).toMatch(/invalid input syntax for type integer: "x"/);
    expect(error.where).toMatch(/line 1235, column id/);
    expect(await count()).toBe(0);
  });

  it("cancels the COPY when the source fails, rejecting with the source's error", async () => {
    await expect(copy(lines(5000, undefined, 2500))).rejects.toThrow("the disk went away");
    expect(await count()).toBe(0);
    expect(await copy(lines(3))).toBe(3);
  });
});
