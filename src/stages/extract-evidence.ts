import { wordsOf } from "./words-of.ts";

/**
 * Chooses the text of a row's pages that goes into an extraction prompt: pages are cut into
 * chunks at paragraph boundaries, each chunk scored by the row's name words and the wanted
 * fields' words, and the best chunks kept up to the row's token budget. Rows of one call share
 * chunks: a chunk several rows chose is sent once, under one source id.
 */

export interface EvidencePage {
  url: string;
  title: string;
  markdown: string;
}

export interface EvidenceChunk {
  /** `S1`, `S2`… in the prompt. */
  id: string;
  url: string;
  title: string;
  index: number;
  text: string;
}

export interface RowEvidence {
  key: string;
  /** Source ids of the row's chunks, in prompt order. */
  sources: string[];
  /** Pages at least one of whose chunks is in the prompt. */
  urls: string[];
}

export interface EvidenceRequest {
  key: string;
  pages: readonly EvidencePage[];
  /** Words naming the row (its inputs). */
  nameWords: readonly string[];
  /** Words of the fields still wanted (names and descriptions). */
  fieldWords: readonly string[];
  /** Numbers wanted: chunks with digits score higher. */
  wantsNumbers: boolean;
  /** Characters of page text for this row (token budget × 4). */
  budgetChars: number;
}

/** About 4 characters a token for English prose; used for budgets, not for billing. */
export const CHARS_PER_TOKEN = 4;
const TARGET_CHUNK_CHARS = 700;
const MAX_CHUNK_CHARS = 1400;

export function chunkMarkdown(markdown: string): string[] {
  const paragraphs = markdown
    .split(/\n\s*\n/)
    .map((p) => p.trim())
    .filter((p) => p !== "");
  const chunks: string[] = [];
  let current = "";
  const flush = () => {
    if (current !== "") chunks.push(current);
    current = "";
  };
  for (const paragraph of paragraphs) {
    if (paragraph.length > MAX_CHUNK_CHARS) {
      flush();
      // A wall of text: cut at sentence ends near the target size.
      let rest = paragraph;
      while (rest.length > MAX_CHUNK_CHARS) {
        const window = rest.slice(0, MAX_CHUNK_CHARS);
        const cut = Math.max(window.lastIndexOf(". ", MAX_CHUNK_CHARS), TARGET_CHUNK_CHARS / 2);
        chunks.push(rest.slice(0, cut + 1).trim());
        rest = rest.slice(cut + 1).trim();
      }
      current = rest;
      continue;
    }
    if (current.length + paragraph.length + 2 > TARGET_CHUNK_CHARS) flush();
    current = current === "" ? paragraph : `${current}\n\n${paragraph}`;
  }
  flush();
  return chunks;
}

interface Scored {
  url: string;
  title: string;
  index: number;
  text: string;
  score: number;
  pageOrder: number;
}

function scoreChunks(request: EvidenceRequest): Scored[] {
  const name = new Set(request.nameWords);
  const fields = new Set(request.fieldWords);
  const scored: Scored[] = [];
  request.pages.forEach((page, pageOrder) => {
    chunkMarkdown(page.markdown).forEach((text, index) => {
      const words = wordsOf(text);
      const present = new Set(words);
      const nameHits = [...name].filter((w) => present.has(w)).length;
      const fieldHits = [...fields].filter((w) => present.has(w)).length;
      let score = 2 * nameHits + fieldHits;
      if (request.wantsNumbers && /\d/.test(text)) score += 1;
      // Earlier pages were ranked higher by select; the page's opening says what it is about.
      score += 0.5 / (1 + pageOrder) + (index === 0 ? 0.5 : 0);
      scored.push({ url: page.url, title: page.title, index, text, score, pageOrder });
    });
  });
  return scored;
}

/** Picks each row's chunks, then numbers the distinct chunks of the whole call. */
export function buildEvidence(requests: readonly EvidenceRequest[]): {
  chunks: EvidenceChunk[];
  rows: RowEvidence[];
} {
  const picked = new Map<string, Scored[]>();
  for (const request of requests) {
    const ranked = scoreChunks(request).sort((a, b) => b.score - a.score);
    const chosen: Scored[] = [];
    let used = 0;
    for (const chunk of ranked) {
      // A chunk that names neither the row nor a wanted field is noise, unless nothing else is.
      if (chunk.score < 1 && chosen.length > 0) break;
      if (used + chunk.text.length > request.budgetChars) {
        if (chosen.length === 0) {
          chosen.push({ ...chunk, text: chunk.text.slice(0, request.budgetChars) });
          used = request.budgetChars;
        }
        continue;
      }
      chosen.push(chunk);
      used += chunk.text.length;
    }
    // Read in page order, as the pages were ranked: context reads better than a score order.
    chosen.sort((a, b) => a.pageOrder - b.pageOrder || a.index - b.index);
    picked.set(request.key, chosen);
  }
  const ids = new Map<string, EvidenceChunk>();
  const chunks: EvidenceChunk[] = [];
  const rows: RowEvidence[] = [];
  for (const request of requests) {
    const sources: string[] = [];
    const urls = new Set<string>();
    for (const chunk of picked.get(request.key) ?? []) {
      const key = `${chunk.url}#${chunk.index}:${chunk.text.length}`;
      let entry = ids.get(key);
      if (!entry) {
        entry = {
          id: `S${chunks.length + 1}`,
          url: chunk.url,
          title: chunk.title,
          index: chunk.index,
          text: chunk.text,
        };
        ids.set(key, entry);
        chunks.push(entry);
      }
      sources.push(entry.id);
      urls.add(chunk.url);
    }
    rows.push({ key: request.key, sources, urls: [...urls] });
  }
  return { chunks, rows };
}
