import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateOrganisations, type PageKind } from "../bench/hard-web/hard-web.ts";
import { type HardWebResult, runHardWeb } from "../bench/hard-web/run-hard-web.ts";
import { createTestDatabase, type TestDatabase } from "./support/test-database.ts";

/**
 * A slice of the hard fixture web (bench/hard-web.ts) through the whole research pipeline, on
 * real PostgreSQL, real HTTP sites on 127.61.0.n and an LLM that reads the pages it is given.
 * Before the select stage stopped calling register entries "a similar name" and the crawl
 * followed foreign and own-voice links, the register, foreign_link and two_deep rows were left
 * empty. Script-filled pages are left to the `auto` tests (they need Chromium).
 */
let database: TestDatabase;
let result: HardWebResult;

beforeAll(async () => {
  database = await createTestDatabase("hard_web");
  result = await runHardWeb({
    orgs: generateOrganisations(1).filter((o) => o.kind !== "script"),
    databaseUrl: database.url,
    javascript: "never",
  });
}, 240_000);

afterAll(async () => {
  await database?.drop();
});

describe("research pipeline on the hard web", () => {
  it("fills the rows whose fact is behind a foreign or follow-word-less link, two deep, or on a register", () => {
    const filled = (kind: PageKind) => result.perKind.get(kind);
    for (const kind of ["foreign_link", "two_deep", "register"] as const)
      expect({ kind, ...filled(kind) }).toEqual({
        kind,
        filled: filled(kind)?.rows,
        rows: filled(kind)?.rows,
      });
    // The floor: every row but the robots decoy's, whose disallowed search result takes one of
    // the select stage's places, and one more for a loaded machine (the rows left empty are
    // listed when it fails).
    const total = [...result.perKind.values()].reduce((n, k) => n + k.filled, 0);
    expect({ total, missed: result.missed }).toEqual({
      total: expect.toSatisfy((n: number) => n >= result.rows - 2) as number,
      missed: result.missed,
    });
  });

  it("writes no value of a near-namesake or of a robots.txt-disallowed page, and fetches none of those pages", () => {
    expect(result.decoys).toEqual([]);
    expect(result.robotsFetches).toEqual([]);
  });
});
