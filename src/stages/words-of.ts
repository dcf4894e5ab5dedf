/**
 * The words of a text for matching names, links and topics: lower case, accents folded, split
 * on anything that is not a letter or digit, short and very common words dropped.
 */
const COMMON = new Set([
  "the",
  "and",
  "for",
  "with",
  "from",
  "that",
  "this",
  "are",
  "was",
  "its",
  "has",
  "have",
  "how",
  "what",
  "when",
  "where",
  "which",
  "www",
  "http",
  "https",
  "html",
  "htm",
  "com",
  "org",
  "net",
  "index",
  "page",
  "value",
  "approximate",
  "primary",
  "year",
  "number",
]);

export function wordsOf(value: unknown): string[] {
  if (value === null || value === undefined) return [];
  const text = typeof value === "string" ? value : JSON.stringify(value);
  return foldedWords(text).filter((w) => w.length > 2 && !COMMON.has(w));
}

/** Lower case, accents folded ("Zürich" → "zurich"), split on anything but letters and digits. */
function foldedWords(text: string): string[] {
  return text
    .normalize("NFKD")
    .replace(/[\u0300-\u036f]/g, "")
    .toLowerCase()
    .split(/[^a-z0-9]+/);
}

/** Words that do not tell two organisations apart: legal forms, and page words in titles. */
const NAME_NOISE = new Set([
  "inc",
  "incorporated",
  "ltd",
  "limited",
  "llc",
  "llp",
  "plc",
  "gmbh",
  "ag",
  "sa",
  "sas",
  "srl",
  "spa",
  "bv",
  "nv",
  "oy",
  "ab",
  "as",
  "corp",
  "corporation",
  "co",
  "company",
  "sp",
  "z",
  "o",
  "about",
  "home",
  "welcome",
  "contact",
  "us",
  "our",
  "the",
]);

/**
 * A name reduced to what tells organisations apart, for exact comparison: "About Acme Corp."
 * and "ACME" are the same key; "Acme Partners" is another.
 */
export function nameKey(text: string): string {
  return foldedWords(text)
    .filter((w) => w !== "" && !NAME_NOISE.has(w))
    .sort()
    .join(" ");
}
