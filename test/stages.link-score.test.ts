import { describe, expect, it } from "vitest";
import { createLinkScorer } from "../src/stages/link-score.ts";

/**
 * Which links the `selective` crawl strategy follows. Before this scorer, only English follow
 * words counted: "Über uns", "Chi siamo", "Our story" and "Numbers" scored 0 and were never
 * fetched, so facts behind them were lost (the hard web bench's sub-page kinds).
 */
describe("createLinkScorer", () => {
  const score = createLinkScorer(["leadership"]);
  const at = (path: string, text: string) => score(`https://acme.example${path}`, text);

  it("follows the English fact page words and the extra words, as before", () => {
    expect(at("/x", "About us")).toBeGreaterThan(0);
    expect(at("/x", "Leadership")).toBeGreaterThan(0);
    expect(at("/company-profile", "Read more")).toBeGreaterThan(0);
  });

  it("follows fact page links written in German, French, Spanish, Italian and Dutch", () => {
    for (const text of [
      "Über uns",
      "Unternehmen",
      "À propos",
      "Qui sommes-nous ? Notre entreprise",
      "Quiénes somos",
      "Chi siamo",
      "La nostra storia",
      "Kennzahlen",
      "Chiffres clés",
      "Over het bedrijf",
    ])
      expect({ text, followed: at("/p/1", text) > 0 }).toEqual({ text, followed: true });
  });

  it('follows a link in the organisation\'s own voice ("Our story") and "Numbers"', () => {
    expect(at("/p/2", "Our story")).toBeGreaterThan(0);
    expect(at("/p/3", "Numbers")).toBeGreaterThan(0);
    expect(at("/p/4", "Unsere Geschichte")).toBeGreaterThan(0);
  });

  it("does not follow chatter, even in the own voice, nor links that name nothing wanted", () => {
    expect(at("/p/5", "Read the story")).toBe(0);
    expect(at("/p/6", "Our blog")).toBe(0);
    expect(at("/p/7", "Our careers")).toBe(0);
    expect(at("/p/8", "Latest news")).toBe(0);
    expect(score("not a url", "About us")).toBe(0);
  });
});
