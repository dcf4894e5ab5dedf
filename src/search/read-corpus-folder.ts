// Turns a folder of .html/.md/.txt files into documents (title, text, relative path) for the
// local search index. Pure file work, so it is tested and reused apart from the database.
import { readdir, readFile } from "node:fs/promises";
import { extname, join, relative, sep } from "node:path";
import { htmlToText } from "./html-to-text.ts";

export interface CorpusDocument {
  /** Path below the folder, with `/` separators: the document's URL is built from it. */
  relativePath: string;
  title: string;
  body: string;
  /** The body was cut to MAX_BODY_CHARS. */
  truncated: boolean;
}

const KINDS: Readonly<Record<string, "html" | "markdown" | "text">> = {
  ".html": "html",
  ".htm": "html",
  ".md": "markdown",
  ".markdown": "markdown",
  ".txt": "text",
};

// A tsvector holds at most 1 MB of lexemes and positions past 16,383 are not kept, so indexing
// more of a huge file would fail or add nothing to ranking.
export const MAX_BODY_CHARS = 500_000;

/** Every supported file below `dir` (hidden files and symlinks skipped), in path order. */
export async function readCorpusFolder(dir: string): Promise<CorpusDocument[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  const files = entries
    .filter((e) => e.isFile() && !e.name.startsWith(".") && KINDS[extname(e.name).toLowerCase()])
    .map((e) => join(e.parentPath, e.name))
    .filter(
      (path) =>
        !relative(dir, path)
          .split(sep)
          .some((part) => part.startsWith(".")),
    )
    .sort();
  const documents: CorpusDocument[] = [];
  for (const path of files) {
    const text = await readFile(path, "utf8");
    documents.push(toDocument(relative(dir, path).split(sep).join("/"), text));
  }
  return documents;
}

export function toDocument(relativePath: string, content: string): CorpusDocument {
  const kind = KINDS[extname(relativePath).toLowerCase()] ?? "text";
  const fileTitle = titleFromFileName(relativePath);
  let title: string;
  let body: string;
  if (kind === "html") {
    const html = htmlToText(content);
    title = html.title ?? html.heading ?? fileTitle;
    body = html.text;
  } else if (kind === "markdown") {
    title = firstMarkdownHeading(content) ?? fileTitle;
    body = markdownToText(content);
  } else {
    title = fileTitle;
    body = content.trim();
  }
  // PostgreSQL text cannot hold NUL; a stray one in a file would fail the whole batch.
  body = body.replaceAll("\u0000", "");
  const truncated = body.length > MAX_BODY_CHARS;
  return { relativePath, title, body: truncated ? body.slice(0, MAX_BODY_CHARS) : body, truncated };
}

function titleFromFileName(relativePath: string): string {
  const base = relativePath.split("/").pop() ?? relativePath;
  return (
    base
      .slice(0, base.length - extname(base).length)
      .replace(/[-_]+/g, " ")
      .trim() || base
  );
}

/** Front matter `title:`, else the first ATX (`# Title`) or setext (`Title` over `===`) heading. */
function firstMarkdownHeading(markdown: string): string | undefined {
  const lines = markdown.split(/\r?\n/);
  let start = 0;
  if (lines[0]?.trim() === "---") {
    const end = lines.findIndex((line, i) => i > 0 && line.trim() === "---");
    if (end > 0) {
      const title = lines
        .slice(1, end)
        .map((line) => /^title:\s*["']?(.+?)["']?\s*$/.exec(line)?.[1])
        .find((t) => t !== undefined);
      if (title) return title;
      // The closing `---` would otherwise read as a setext underline of the last YAML line.
      start = end + 1;
    }
  }
  for (let i = start; i < lines.length; i++) {
    const line = lines[i] ?? "";
    const atx = /^ {0,3}#{1,6}[ \t]+(.+?)[ \t#]*$/.exec(line);
    if (atx?.[1]) return atx[1].trim();
    const next = lines[i + 1] ?? "";
    if (line.trim() !== "" && /^ {0,3}(=+|-+)[ \t]*$/.test(next)) return line.trim();
  }
  return undefined;
}

/** Keeps the words, drops link targets and image addresses (URL fragments are not content). */
function markdownToText(markdown: string): string {
  return markdown
    .replace(/!\[([^\]]*)\]\([^)]*\)/g, "$1")
    .replace(/\[([^\]]*)\]\([^)]*\)/g, "$1")
    .trim();
}
