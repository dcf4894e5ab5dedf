import { wordsOf } from "./words-of.ts";

/**
 * Words of a link's text or address that say its page describes the organisation, in the
 * languages company sites are most often written in besides English (accents folded, as
 * `wordsOf` gives them: "Über uns" → "uber", "À propos" → "propos").
 */
export const FOLLOW_WORDS: readonly string[] = [
  // English
  "about",
  "company",
  "facts",
  "figures",
  "numbers",
  "profile",
  "overview",
  "history",
  "team",
  "contact",
  "who",
  // German
  "uber",
  "unternehmen",
  "firma",
  "geschichte",
  "kennzahlen",
  "zahlen",
  "fakten",
  "profil",
  // French
  "propos",
  "entreprise",
  "societe",
  "histoire",
  "chiffres",
  "presentation",
  // Spanish and Portuguese
  "empresa",
  "nosotros",
  "quienes",
  "historia",
  "cifras",
  "sobre",
  "numeros",
  "perfil",
  // Italian
  "azienda",
  "siamo",
  "storia",
  "numeri",
  "profilo",
  // Dutch
  "bedrijf",
  "geschiedenis",
  "cijfers",
];

/**
 * A link text opening with "our" speaks for the organisation ("Our story", "Unsere Werte",
 * "Notre histoire") even when no word of it is a follow word; "Read the story" does not.
 */
const POSSESSIVES = new Set([
  "our",
  "unser",
  "unsere",
  "notre",
  "nos",
  "nuestra",
  "nuestro",
  "nuestros",
  "nuestras",
  "nostra",
  "nostro",
  "nostri",
  "onze",
  "nossa",
  "nosso",
]);

/** Words that say a page is news, a job ad or a legal page: the select stage's too. */
export const CHATTER_PAGE_WORDS = [
  "careers",
  "jobs",
  "job",
  "news",
  "blog",
  "press",
  "privacy",
  "terms",
  "cookies",
  "login",
  "cart",
];

/** …unless what it names is news, job ads or legal pages ("Our blog", "Our careers"). */
const CHATTER_WORDS = new Set([
  ...CHATTER_PAGE_WORDS,
  "shop",
  "karriere",
  "presse",
  "datenschutz",
  "impressum",
  "emplois",
  "empleo",
  "lavora",
]);

/**
 * How much a link is worth following for the `selective` strategy: the follow words (and the
 * given extra words: follow_keywords, the outputs' words) its text or path names, plus one for
 * a link text in the organisation's own voice. 0: not followed.
 */
export function createLinkScorer(
  extraWords: Iterable<string>,
): (url: string, text: string) => number {
  const followWords = new Set([...FOLLOW_WORDS, ...extraWords]);
  return (url, text) => {
    let path: string;
    try {
      path = new URL(url).pathname;
    } catch {
      return 0;
    }
    const words = new Set([...wordsOf(text), ...wordsOf(path)]);
    const named = [...followWords].filter((w) => words.has(w)).length;
    const chatter = [...words].some((w) => CHATTER_WORDS.has(w));
    const first = text
      .normalize("NFKD")
      .replace(/[\u0300-\u036f]/g, "")
      .toLowerCase()
      .trim()
      .split(/[^a-z0-9]+/)[0];
    const ownVoice = !chatter && first !== undefined && POSSESSIVES.has(first) ? 1 : 0;
    return named + ownVoice;
  };
}
