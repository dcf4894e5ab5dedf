import { describe, expect, it } from "vitest";
import { pastableUrl } from "../src/cli/start-progress.ts";

describe("pastableUrl (the psql command printed after the demo)", () => {
  it("keeps the embedded default's local password, so the command can be pasted", () => {
    const url = "postgres://postgres:gleaner@127.0.0.1:54329/gleaner";
    expect(pastableUrl({ url, embedded: true })).toBe(url);
  });

  it("masks the password of the user's own database", () => {
    const shown = pastableUrl({
      url: "postgres://app:s3cret-from-env@db.internal:5432/crm",
      embedded: false,
    });
    expect(shown).not.toContain("s3cret-from-env");
    expect(shown).toContain("app:");
    expect(shown).toContain("@db.internal:5432/crm");
  });
});
