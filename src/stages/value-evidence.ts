import { contentHash } from "../core/content-hash.ts";
import type { OutputType } from "../core/output-types.ts";
import type { ValueEvidence } from "../pipeline/row-state.ts";

/**
 * The evidence a value keeps so a reviewer sees why without opening the page: the passage that
 * states it, found by looking for the value itself in the text the model was given (no extra
 * tokens asked of the model, and a quote the model could not have made up), and the page as it
 * was read: its fetch time and the hash of its text.
 */

/** A quote is the sentence (or line) stating the value, cut to this around the value. */
export const QUOTE_MAX_CHARS = 300;

export interface Passage {
  url: string;
  text: string;
}

/** A page as the extract stage read it from the page cache. */
export interface ReadPage {
  fetchedAt: Date;
  markdown: string;
}

/** The page part of the evidence: when it was fetched, and the hash of the text that was read. */
export function pageEvidence(page: ReadPage | undefined): ValueEvidence {
  if (!page) return {};
  return { fetched_at: page.fetchedAt.toISOString(), content_hash: contentHash(page.markdown) };
}

/**
 * The first passage (in the order given: the cited ones first) that states the value, and the
 * sentence around it. Undefined when the value is not written out in any of them: a model's
 * paraphrase or a boolean has no passage to quote.
 */
export function findQuote(
  type: OutputType,
  value: unknown,
  passages: readonly Passage[],
): { quote: string; url: string } | undefined {
  const patterns = needles(type, value);
  if (patterns.length === 0) return undefined;
  for (const passage of passages) {
    for (const pattern of patterns) {
      const match = pattern.exec(passage.text);
      if (match)
        return { quote: around(passage.text, match.index, match[0].length), url: passage.url };
    }
  }
  return undefined;
}

/** Patterns a value may be written as in page text, the most literal first. */
function needles(type: OutputType, value: unknown): RegExp[] {
  switch (type) {
    case "text":
      return typeof value === "string" ? textPattern(value) : [];
    case "text[]":
      return Array.isArray(value)
        ? value.flatMap((item) => (typeof item === "string" ? textPattern(item) : []))
        : [];
    case "integer":
    case "numeric":
      return typeof value === "number" ? numberPatterns(value) : [];
    case "date":
    case "timestamptz":
      // Pages write dates every way; the ISO form, or the year alone as a last resort.
      return typeof value === "string"
        ? [...textPattern(value.slice(0, 10)), ...numberPatterns(Number(value.slice(0, 4)))]
        : [];
    default:
      return [];
  }
}

/** Case- and space-insensitive; whole words only where the value starts or ends with one. */
function textPattern(text: string): RegExp[] {
  const trimmed = text.trim();
  // A letter or two is found everywhere and proves nothing.
  if (trimmed.length < 2) return [];
  const body = trimmed
    .split(/\s+/)
    .map((word) => word.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"))
    .join("\\s+");
  const start = /^\w/.test(trimmed) ? "(?<![\\p{L}\\p{N}])" : "";
  const end = /\w$/.test(trimmed) ? "(?![\\p{L}\\p{N}])" : "";
  return [new RegExp(`${start}${body}${end}`, "iu")];
}

/** 412000 as 412000, 412,000, 412 000 or 412.000; never inside a longer number. */
function numberPatterns(n: number): RegExp[] {
  if (!Number.isFinite(n)) return [];
  const plain = String(n);
  const forms = new Set([plain]);
  const [whole = "", fraction] = plain.replace("-", "").split(".");
  if (whole.length > 3) {
    const grouped = whole.replace(/\B(?=(\d{3})+(?!\d))/g, "\u0000");
    const sign = n < 0 ? "-" : "";
    for (const separator of [",", " ", "\u00a0", "\u202f", "."]) {
      const int = grouped.replaceAll("\u0000", separator);
      forms.add(`${sign}${int}${fraction === undefined ? "" : `.${fraction}`}`);
    }
  }
  return [...forms].map(
    (form) =>
      new RegExp(`(?<![\\d.,])${form.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}(?![\\d]|[.,]\\d)`),
  );
}

/**
 * The sentence or line holding text[at, at + length), cut to QUOTE_MAX_CHARS around the match,
 * with an ellipsis where it was cut, and its spaces collapsed.
 */
function around(text: string, at: number, length: number): string {
  const boundary = /[.!?](?=\s)|\n/g;
  let start = 0;
  for (const m of text.slice(0, at).matchAll(boundary)) start = (m.index ?? 0) + m[0].length;
  boundary.lastIndex = at + length;
  const next = boundary.exec(text);
  // The sentence's full stop is part of it; a line break is not.
  const stop = next ? next.index + (next[0] === "\n" ? 0 : 1) : text.length;
  let from = start;
  let end = stop;
  if (end - from > QUOTE_MAX_CHARS) {
    // Keep the value in the middle of what fits.
    const room = Math.max(0, QUOTE_MAX_CHARS - length);
    from = Math.max(start, at - Math.floor(room / 2));
    end = Math.min(stop, from + QUOTE_MAX_CHARS);
    from = Math.max(start, end - QUOTE_MAX_CHARS);
  }
  // Never cut between the halves of a surrogate pair.
  if (/[\uDC00-\uDFFF]/.test(text[from] ?? "")) from++;
  if (/[\uD800-\uDBFF]/.test(text[end - 1] ?? "")) end--;
  const quote = text.slice(from, end).replace(/\s+/g, " ").trim();
  return `${from > start ? "…" : ""}${quote}${end < stop ? "…" : ""}`;
}
