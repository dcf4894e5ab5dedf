import { describe, expect, it } from "vitest";
import {
  buildEvidence,
  chunkMarkdown,
  type EvidencePage,
  type EvidenceRequest,
} from "../src/stages/extract-evidence.ts";
import { renderQuery } from "../src/stages/queries-stage.ts";
import { domainOf } from "../src/stages/select-stage.ts";
import { wordsOf } from "../src/stages/words-of.ts";

/**
 * The pure parts of the research stages: the domain of a website input (select), query
 * templates (queries), the words used for matching, and how the extract stage cuts pages into
 * chunks and picks each row's evidence within its budget.
 */

describe("domainOf", () => {
  it("gives the host of a URL or a bare domain, lower case and without www.", () => {
    expect(domainOf("https://www.acme.com/about")).toBe("acme.com");
    expect(domainOf("acme.com")).toBe("acme.com");
    expect(domainOf("  WWW.Acme.COM/contact  ")).toBe("acme.com");
    expect(domainOf("http://shop.acme.co.uk:8080/x?y=1")).toBe("shop.acme.co.uk");
    expect(domainOf("ftp://files.acme.com")).toBe("files.acme.com");
    // Only a leading www. label goes.
    expect(domainOf("https://wwwacme.com")).toBe("wwwacme.com");
  });

  it("gives the same host as the search results' URLs for a domain with accents", () => {
    expect(domainOf("société.fr")).toBe(new URL("https://société.fr/").hostname);
  });

  it("gives nothing for empty, non-text or non-domain values", () => {
    for (const value of [
      undefined,
      null,
      "",
      "   ",
      42,
      { url: "acme.com" },
      "Acme Rockets Inc",
      "http://",
    ])
      expect({ value, domain: domainOf(value) }).toEqual({ value, domain: undefined });
  });
});

describe("renderQuery", () => {
  it("fills fields, turns unknown and NULL fields into nothing, and collapses whitespace", () => {
    expect(renderQuery("{{name}} {{city}} company", { name: "Acme" })).toBe("Acme company");
    expect(renderQuery("{{name}} {{city}} company", { name: "Acme", city: null })).toBe(
      "Acme company",
    );
    expect(
      renderQuery("  {{ name }}\n\t{{city}}   {{search_context}} ", {
        name: "Acme",
        city: "Paris",
        search_context: "",
      }),
    ).toBe("Acme Paris");
    expect(renderQuery("{{name}}", { name: "Acme\n  Rockets\tInc" })).toBe("Acme Rockets Inc");
    expect(renderQuery("{{missing}}", {})).toBe("");
  });

  it("writes numbers and booleans as they are and leaves other braces alone", () => {
    expect(
      renderQuery("{{name}} founded {{year}} {{public}}", {
        name: "Acme",
        year: 1950,
        public: true,
      }),
    ).toBe("Acme founded 1950 true");
    expect(renderQuery("{name} {{name}}", { name: "Acme" })).toBe("{name} Acme");
  });

  it("writes a date input without JSON quotes, which a search engine reads as an exact phrase", () => {
    const query = renderQuery("{{name}} {{founded}}", {
      name: "Acme",
      founded: new Date("1950-03-01T00:00:00Z"),
    });
    expect(query).not.toContain('"');
    expect(query).toMatch(/^Acme 1950-03-01/);
  });
});

describe("wordsOf", () => {
  it("lower-cases, folds accents, splits on anything but letters and digits", () => {
    expect(wordsOf("Société Générale")).toEqual(["societe", "generale"]);
    expect(wordsOf("L'Oréal & Co-Founder's")).toEqual(["oreal", "founder"]);
    expect(wordsOf("Founded in 1950; 120 employees")).toEqual([
      "founded",
      "1950",
      "120",
      "employees",
    ]);
  });

  it("drops short and very common words, and URL noise", () => {
    expect(wordsOf("The Acme Co. of NYC")).toEqual(["acme", "nyc"]);
    expect(wordsOf("https://www.acme.com/about-us/index.html")).toEqual(["acme", "about"]);
    expect(wordsOf("What is the approximate number of employees")).toEqual(["employees"]);
  });

  it("reads non-text values through JSON and gives nothing for NULL", () => {
    expect(wordsOf(null)).toEqual([]);
    expect(wordsOf(undefined)).toEqual([]);
    expect(wordsOf(1950)).toEqual(["1950"]);
    expect(wordsOf(42)).toEqual([]);
    expect(wordsOf({ city: "Springfield", tags: ["rockets"] })).toEqual([
      "city",
      "springfield",
      "tags",
      "rockets",
    ]);
  });
});

/** A paragraph of about `length` characters that names nothing of interest. */
function noise(seed: string, length = 500): string {
  const words = ["lorem", "ipsum", "dolor", "sit", "amet", "consectetur", "adipiscing", "elit"];
  let text = "";
  let i = seed.length;
  while (text.length < length) text += `${words[i++ % words.length]} `;
  return `${text.trim()}.`;
}

describe("chunkMarkdown", () => {
  it("cuts at paragraph boundaries, joining short paragraphs up to about 700 characters", () => {
    const p = (n: number) => `${String(n).repeat(3)} ${noise(String(n), 290)}`;
    const chunks = chunkMarkdown([p(1), p(2), p(3), p(4)].join("\n\n"));
    expect(chunks).toEqual([`${p(1)}\n\n${p(2)}`, `${p(3)}\n\n${p(4)}`]);
  });

  it("drops empty paragraphs and gives nothing for an empty page", () => {
    expect(chunkMarkdown("")).toEqual([]);
    expect(chunkMarkdown("\n\n   \n\n")).toEqual([]);
    expect(chunkMarkdown("# Title\n\n\n\n  \n\nBody text.")).toEqual(["# Title\n\nBody text."]);
  });

  it("cuts a wall of text at sentence ends, no chunk over 1400 characters, losing no word", () => {
    const sentences = Array.from(
      { length: 60 },
      (_, i) => `Sentence number ${i} says something about rockets`,
    );
    const wall = `${sentences.join(". ")}.`;
    expect(wall.length).toBeGreaterThan(2800);
    const chunks = chunkMarkdown(`Intro.\n\n${wall}\n\nOutro.`);
    expect(chunks.length).toBeGreaterThan(2);
    for (const chunk of chunks) expect(chunk.length).toBeLessThanOrEqual(1400);
    // Every cut inside the wall falls after a full stop.
    for (const chunk of chunks.slice(1, -1)) expect(chunk.endsWith(".")).toBe(true);
    expect(chunks.join(" ").split(/\s+/)).toEqual(`Intro. ${wall} Outro.`.split(/\s+/));
  });
});

function request(overrides: Partial<EvidenceRequest> & { key: string }): EvidenceRequest {
  return {
    pages: [],
    nameWords: wordsOf("Acme Rockets"),
    fieldWords: wordsOf("founded Year founded"),
    wantsNumbers: true,
    budgetChars: 6000,
    ...overrides,
  };
}

/** A page whose paragraphs (each about 500 characters) are each a chunk of their own. */
function page(url: string, paragraphs: string[]): EvidencePage {
  return { url, title: url, markdown: paragraphs.join("\n\n") };
}

const FACT = `Acme Rockets was founded in 1950 in Springfield. ${noise("fact", 420)}`;

describe("buildEvidence", () => {
  it("chooses the chunks naming the row and the wanted fields over noise", () => {
    const pages = [
      page("https://acme.example/blog", [noise("a"), noise("bb"), FACT, noise("ccc")]),
      page("https://other.example/", [noise("dddd"), noise("eeeee")]),
    ];
    const { chunks, rows } = buildEvidence([request({ key: "1", pages })]);
    const texts = chunks.map((c) => c.text);
    expect(texts).toContain(FACT);
    // Plenty of budget left, yet no chunk naming nothing is sent (the first page's opening
    // counts as naming what the page is about).
    expect(texts).not.toContain(noise("bb"));
    expect(texts).not.toContain(noise("ccc"));
    expect(texts).not.toContain(noise("dddd"));
    expect(texts).not.toContain(noise("eeeee"));
    expect(rows).toEqual([
      {
        key: "1",
        sources: chunks.map((c) => c.id),
        urls: ["https://acme.example/blog"],
      },
    ]);
  });

  it("keeps each row within its budget, preferring the best chunks", () => {
    const relevant = [
      `Acme Rockets: founded 1950. ${noise("r1", 450)}`,
      `Acme Rockets headquarters and founded date. ${noise("r2", 450)}`,
      `Acme founded. ${noise("r3", 450)}`,
    ];
    const pages = [page("https://acme.example/", [noise("x"), ...relevant])];
    for (const budget of [600, 1100, 1700, 5000]) {
      const { chunks } = buildEvidence([request({ key: "1", pages, budgetChars: budget })]);
      const used = chunks.reduce((n, c) => n + c.text.length, 0);
      expect({ budget, ok: used <= budget && used > 0 }).toEqual({ budget, ok: true });
      // The chunk naming the row, the field and a number is always in.
      expect(chunks.map((c) => c.text)).toContain(relevant[0]);
    }
  });

  it("cuts the best chunk to the budget when even it does not fit", () => {
    const { chunks, rows } = buildEvidence([
      request({ key: "1", pages: [page("https://acme.example/", [FACT])], budgetChars: 100 }),
    ]);
    expect(chunks.map((c) => c.text)).toEqual([FACT.slice(0, 100)]);
    expect(rows[0]?.sources).toEqual(["S1"]);
  });

  it("sends a chunk two rows chose once, and both rows cite the same id", () => {
    const shared = page("https://directory.example/rockets", [
      `Acme Rockets was founded in 1950; Beta Rockets was founded in 1962. ${noise("s", 400)}`,
    ]);
    const acmeOwn = page("https://acme.example/", [FACT]);
    const { chunks, rows } = buildEvidence([
      request({ key: "1", pages: [acmeOwn, shared] }),
      request({ key: "2", pages: [shared], nameWords: wordsOf("Beta Rockets") }),
    ]);
    const directory = chunks.filter((c) => c.url === "https://directory.example/rockets");
    expect(directory.length).toBe(1);
    const id = directory[0]?.id as string;
    expect(rows.find((r) => r.key === "1")?.sources).toContain(id);
    expect(rows.find((r) => r.key === "2")?.sources).toEqual([id]);
    // Ids are S1, S2… in the order the chunks are first sent, each once.
    expect(chunks.map((c) => c.id)).toEqual(chunks.map((_, i) => `S${i + 1}`));
    expect(new Set(chunks.map((c) => c.text)).size).toBe(chunks.length);
  });

  it("lists a row's chunks in page order, not score order", () => {
    const weak = `Founded long ago. ${noise("w", 450)}`;
    const strong = `Acme Rockets was founded in 1950 by Acme Rockets founders. ${noise("st", 420)}`;
    const pages = [
      page("https://first.example/", [weak]),
      page("https://second.example/", [noise("n"), strong]),
    ];
    const { chunks, rows } = buildEvidence([request({ key: "1", pages })]);
    const byId = new Map(chunks.map((c) => [c.id, c]));
    const cited = (rows[0]?.sources ?? []).map((id) => byId.get(id));
    expect(cited.map((c) => c?.text)).toEqual([weak, strong]);
    expect(cited.map((c) => [c?.url, c?.index])).toEqual([
      ["https://first.example/", 0],
      ["https://second.example/", 1],
    ]);
    expect(rows[0]?.urls).toEqual(["https://first.example/", "https://second.example/"]);
  });

  it("gives a row without pages no sources", () => {
    const { chunks, rows } = buildEvidence([request({ key: "9" })]);
    expect(chunks).toEqual([]);
    expect(rows).toEqual([{ key: "9", sources: [], urls: [] }]);
  });
});
