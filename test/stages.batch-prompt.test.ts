import { describe, expect, it } from "vitest";
import {
  escapeForPrompt,
  promptWithRowIds,
  rowFieldTexts,
  rowHeading,
} from "../src/stages/batch-prompt.ts";

/** How one row's part of a batch prompt is written: ids, escaping, the per-row bound. */

describe("promptWithRowIds", () => {
  const keys = ["1", "2", "3", "alice@example.com"];
  const texts: Record<string, string> = {
    "1": "alpha",
    "2": "beta",
    "3": "beta",
    "alice@example.com": "x",
  };
  const render = (rows: Record<string, string>, sources = "S1 page text") => {
    const calls: number[] = [];
    const fn = (idOf: ReadonlyMap<string, string>) => {
      calls.push(idOf.size);
      return [
        "Fill these fields",
        sources,
        ...keys.map((k) => `${rowHeading(idOf.get(k) as string)}\n${rows[k] ?? ""}`),
      ].join("\n\n");
    };
    return { fn, calls };
  };

  it("gives the same prompt the same distinct ids, that say nothing of the keys", () => {
    const first = promptWithRowIds(keys, "label", render(texts).fn);
    const second = promptWithRowIds(keys, "label", render(texts).fn);
    expect(second.prompt).toBe(first.prompt);
    expect([...first.ids.idOf.keys()]).toEqual(keys);
    const ids = [...first.ids.keyOf.keys()];
    // Rows 2 and 3 say the same thing: their place tells them apart.
    expect(new Set(ids).size).toBe(4);
    for (const id of ids) {
      expect(id).toMatch(/^r[0-9a-f]{12}$/);
      expect(first.ids.idOf.get(first.ids.keyOf.get(id) as string)).toBe(id);
      expect(first.prompt).toContain(`${rowHeading(id)}\n`);
    }
    expect(ids.join(" ")).not.toMatch(/alice|example/);
  });

  it("changes every id when any text of the prompt changes, so no text can know an id", () => {
    const base = promptWithRowIds(keys, "label", render(texts).fn).ids;
    const idsOf = (p: ReturnType<typeof promptWithRowIds>) => [...p.ids.keyOf.keys()];
    const others = [
      // One row's text, a source's text, the stage: each is another prompt.
      promptWithRowIds(keys, "label", render({ ...texts, "3": "beta2" }).fn),
      promptWithRowIds(keys, "label", render(texts, "S1 other page text").fn),
      promptWithRowIds(keys, "other_stage", render(texts).fn),
    ];
    for (const other of others)
      for (const id of idsOf(other)) expect([...base.keyOf.keys()]).not.toContain(id);
  });

  it("hashes the prompt with one placeholder id, then writes it with the ids", () => {
    const { fn, calls } = render(texts);
    const { prompt } = promptWithRowIds(keys, "label", fn);
    expect(calls).toEqual([4, 4]);
    expect(prompt).not.toContain("r000000000000");
  });
});

describe("escapeForPrompt", () => {
  it("keeps every value on its line: no line break, separator or lone surrogate survives", () => {
    const hostile = 'a\nb\r\nc\u2028d\u2029e\u0085f\u000bg\u0000h\ud800i "quoted" back\\slash 😀';
    const escaped = escapeForPrompt(hostile);
    for (const breaking of ["\n", "\r", "\u2028", "\u2029", "\u0085", "\u000b", "\u0000"])
      expect(escaped).not.toContain(breaking);
    expect(escaped).not.toMatch(/[\ud800-\udbff](?![\udc00-\udfff])/);
    // A JSON string body: reading it back gives the value, well formed.
    expect(JSON.parse(`"${escaped}"`)).toBe(hostile);
    expect(escaped).toContain("😀");
    expect(escapeForPrompt(`x\n${rowHeading("r00000000")}\ny`)).toBe("x\\n### row r00000000\\ny");
  });
});

describe("rowFieldTexts", () => {
  it("renders fields as templates do, escaped, and leaves a row within the bound untouched", () => {
    const { texts, truncated } = rowFieldTexts(
      { name: "Acme\nCorp", size: 12, tags: ["a", "b"], none: null },
      ["name", "size", "tags", "none", "name"],
      100,
    );
    expect(texts).toEqual({
      name: "Acme\\nCorp",
      size: "12",
      tags: '[\\"a\\",\\"b\\"]',
      none: "(unknown)",
    });
    expect(truncated).toBeUndefined();
  });

  it("cuts long values to share the bound, keeps short ones whole, and records the cut", () => {
    const { texts, truncated } = rowFieldTexts(
      { name: "Acme", blurb: "x".repeat(5000), notes: "y".repeat(300) },
      ["name", "blurb", "notes"],
      1000,
    );
    expect(texts["name"]).toBe("Acme");
    expect(texts["notes"]).toBe("y".repeat(300));
    // 1000 - 4 - 300 = 696 characters left for the longest.
    expect(texts["blurb"]).toBe(`${"x".repeat(696)}… [cut: 4304 more characters]`);
    expect(truncated).toEqual({ blurb: { chars: 5000, kept: 696 } });
  });

  it("splits the bound evenly among values that are all too long", () => {
    const { texts, truncated } = rowFieldTexts(
      { a: "a".repeat(900), b: "b".repeat(2000) },
      ["a", "b"],
      1000,
    );
    expect(texts["a"]?.startsWith("a".repeat(500) + "…")).toBe(true);
    expect(texts["b"]?.startsWith("b".repeat(500) + "…")).toBe(true);
    expect(truncated).toEqual({ a: { chars: 900, kept: 500 }, b: { chars: 2000, kept: 500 } });
  });

  it("counts escaped characters, and never cuts an escape sequence or a surrogate pair", () => {
    const { texts, truncated } = rowFieldTexts(
      { text: "😀".repeat(10) + "\n".repeat(10) },
      ["text"],
      25,
    );
    // 10 emoji (20 UTF-16 units) + 2 escaped line breaks (4 characters) = 24 ≤ 25.
    expect(texts["text"]).toBe(`${"😀".repeat(10)}\\n\\n… [cut: 8 more characters]`);
    expect(truncated).toEqual({ text: { chars: 30, kept: 22 } });
    const odd = rowFieldTexts({ text: "😀😀😀" }, ["text"], 5).texts["text"] ?? "";
    expect(odd.startsWith("😀😀…")).toBe(true);
  });

  it("bounds a 10 MB value", () => {
    const huge = "z".repeat(10 * 1024 * 1024);
    const { texts, truncated } = rowFieldTexts({ huge }, ["huge"], 8000);
    expect(texts["huge"]).toBe(`${"z".repeat(8000)}… [cut: ${huge.length - 8000} more characters]`);
    expect(truncated).toEqual({ huge: { chars: huge.length, kept: 8000 } });
  });
});
