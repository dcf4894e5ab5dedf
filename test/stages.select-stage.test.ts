import { describe, expect, it } from "vitest";
import type { SelectStageConfig } from "../src/config/config-types.ts";
import type { FoundResult } from "../src/stages/search-stage.ts";
import { createSelectStage, type SelectData, titleParts } from "../src/stages/select-stage.ts";

/**
 * The keyword ranking of the select stage on register and directory pages. Before, a register
 * entry titled "Acme Rocketry GmbH | Company Register" counted as "a similar name" (−4) because
 * its whole title was not the row's name, so a row whose facts only a register states ranked
 * it below chatter and lost them (the hard web bench's directory kind: 0% recall).
 */
const config: SelectStageConfig = {
  kind: "select",
  name: "select",
  outputs: [],
  when: undefined,
  batchSize: 10,
  maxUrls: 2,
  domainInput: "website",
  keywords: [],
  llm: undefined,
  searchStage: "search",
};

function result(url: string, title: string, rank: number): FoundResult {
  return { url, title, snippet: "", rank, queries: [0], provider: "fake" };
}

async function select(results: FoundResult[]): Promise<SelectData> {
  const stage = createSelectStage(
    config,
    ["name", "website"],
    [{ name: "employees", type: "integer", description: "Number of employees" }],
    [],
  );
  const chunk = await stage.run(
    [
      {
        key: "1",
        fields: { name: "Acme Rocketry", website: "acme-rocketry.example" },
        data: { search: { results } },
      },
    ],
    { signal: new AbortController().signal, pipeline: "p", log: () => undefined },
  );
  const row = chunk.rows.get("1");
  if (!row?.ok) throw new Error("select failed");
  return row.data as SelectData;
}

describe("select stage: register and directory pages", () => {
  it("ranks the row's register entry above a near-namesake's and does not call it a similar name", async () => {
    const data = await select([
      result("https://news.example/acme-rocketry-launch", "Rocket launch news", 1),
      result("https://register.example/entry/9", "Acme Rocketry Partners | Company Register", 2),
      result("https://register.example/entry/7", "Acme Rocketry GmbH | Company Register", 3),
    ]);
    const entry = data.urls.find((u) => u.url.endsWith("/entry/7"));
    expect(data.urls[0]?.url).toBe("https://register.example/entry/7");
    expect(entry?.reason).not.toContain("similar name");
    expect(entry?.reason).toContain("a profile page");
  });

  it("still marks a near-namesake's page, whatever the register words around it", async () => {
    const data = await select([
      result("https://dir.example/a", "Directory: Acme Rocketry Partners (HRB 1)", 1),
      result("https://dir.example/b", "Blog", 2),
    ]);
    expect(data.urls.find((u) => u.url.endsWith("/a"))?.reason).toContain("a similar name");
  });
});

describe("titleParts", () => {
  it("cuts a title at its separators and keeps the whole title too", () => {
    expect(titleParts("Register — Acme Rocketry GmbH (HRB 1234)")).toEqual([
      "Register — Acme Rocketry GmbH (HRB 1234)",
      "Register",
      "Acme Rocketry GmbH",
      "HRB 1234",
    ]);
    expect(titleParts("Acme-Rocketry - Profile")).toEqual([
      "Acme-Rocketry - Profile",
      "Acme-Rocketry",
      "Profile",
    ]);
  });
});
