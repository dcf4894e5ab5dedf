import { absoluteHttpUrl, type DomElement, type DomNode } from "./extract-dom.ts";

/**
 * HTML → Markdown for the extraction prompt, in one walk of the DOM: ATX headings, `-` lists,
 * fenced code, links made absolute, tables as pipe rows, definition lists as `term` / `: value`
 * lines, and nothing that is not text (scripts, styles, images, form controls). It replaces
 * turndown, which cloned the tree and ran its rules over every node: on real pages that was a
 * tenth of the crawl's CPU. The text is not Markdown-escaped: it is read by a model, not rendered.
 */

/** linkedom's nodes, as far as the walk reads them. */
interface WalkNode extends DomNode {
  readonly childNodes: ArrayLike<WalkNode>;
  readonly localName?: string;
}

const TEXT_NODE = 3;
const ELEMENT_NODE = 1;

const SKIPPED = new Set([
  "script",
  "style",
  "noscript",
  "template",
  "iframe",
  "object",
  "embed",
  "canvas",
  "button",
  "select",
  "input",
  "textarea",
  "picture",
  "video",
  "audio",
  "img",
  "svg",
  "head",
  "title",
  "meta",
  "link",
]);

/** Elements that start and end a paragraph of their own. */
const BLOCKS = new Set([
  "address",
  "article",
  "aside",
  "body",
  "center",
  "details",
  "dialog",
  "dir",
  "div",
  "fieldset",
  "figcaption",
  "figure",
  "footer",
  "form",
  "header",
  "hgroup",
  "html",
  "legend",
  "main",
  "menu",
  "nav",
  "p",
  "section",
  "summary",
  // Table parts outside a table (or a layout table's cells) are plain blocks too.
  "tbody",
  "thead",
  "tfoot",
  "tr",
  "td",
  "th",
  "caption",
  "li",
  "dt",
  "dd",
]);

const HEADINGS: Record<string, string> = {
  h1: "#",
  h2: "##",
  h3: "###",
  h4: "####",
  h5: "#####",
  h6: "######",
};

/** Markdown of an element (a Readability article or a page's body), links resolved on `baseUrl`. */
export function htmlToMarkdown(root: DomElement, baseUrl: string): string {
  const out = new Builder();
  walkChildren(root as unknown as WalkNode, out, baseUrl);
  return out.result();
}

/**
 * Paragraphs being written: finished blocks, and the inline text of the one in progress. Inline
 * text is normalised when its paragraph ends, so a block's string is final once pushed and can be
 * indented or prefixed by a list or quote around it.
 */
class Builder {
  readonly parts: string[] = [];
  inline = "";

  flush(): void {
    if (this.inline === "") return;
    const text = normaliseInline(this.inline);
    this.inline = "";
    if (text !== "") this.parts.push(text);
  }

  block(text: string): void {
    this.flush();
    if (text !== "") this.parts.push(text);
  }

  result(separator = "\n\n"): string {
    this.flush();
    return this.parts.join(separator);
  }
}

/** Spaces collapsed, each line trimmed, at most one empty line in a row. */
function normaliseInline(text: string): string {
  if (!text.includes("\n")) return text.replace(/ {2,}/g, " ").trim();
  return text
    .split("\n")
    .map((line) => line.replace(/ {2,}/g, " ").trim())
    .join("\n")
    .replace(/\n{3,}/g, "\n\n")
    .trim();
}

function walkChildren(node: WalkNode, out: Builder, baseUrl: string): void {
  const children = node.childNodes;
  for (let i = 0; i < children.length; i++) walk(children[i]!, out, baseUrl);
}

function walk(node: WalkNode, out: Builder, baseUrl: string): void {
  if (node.nodeType === TEXT_NODE) {
    out.inline += (node.textContent ?? "").replace(/[ \t\n\r\f]+/g, " ");
    return;
  }
  if (node.nodeType !== ELEMENT_NODE) return;
  const tag = node.localName ?? "";
  if (SKIPPED.has(tag)) return;
  const element = node as unknown as DomElement & WalkNode;
  const heading = HEADINGS[tag];
  if (heading !== undefined) {
    const text = oneLine(inner(element, baseUrl));
    out.block(text === "" ? "" : `${heading} ${text}`);
    return;
  }
  switch (tag) {
    case "br":
      out.inline += "\n";
      return;
    case "hr":
      out.block("---");
      return;
    case "ul":
    case "ol":
      out.block(list(element, tag === "ol", baseUrl));
      return;
    case "dl":
      out.block(definitions(element, baseUrl));
      return;
    case "table":
      table(element, out, baseUrl);
      return;
    case "blockquote": {
      const text = inner(element, baseUrl);
      out.block(text === "" ? "" : text.replace(/^/gm, "> ").replace(/^> $/gm, ">"));
      return;
    }
    case "pre": {
      const code = (element.textContent ?? "").replace(/^\n/, "").trimEnd();
      out.block(code.trim() === "" ? "" : `\`\`\`\n${code}\n\`\`\``);
      return;
    }
    case "a":
      link(element, out, baseUrl);
      return;
    case "strong":
    case "b":
      wrapInline(element, out, baseUrl, "**");
      return;
    case "em":
    case "i":
      wrapInline(element, out, baseUrl, "_");
      return;
    case "code":
    case "kbd":
    case "samp": {
      const code = (element.textContent ?? "").replace(/\s+/g, " ");
      if (code.trim() !== "")
        out.inline += code.includes("`") ? `\`\` ${code} \`\`` : `\`${code}\``;
      return;
    }
  }
  if (BLOCKS.has(tag)) {
    out.flush();
    walkChildren(element, out, baseUrl);
    out.flush();
    return;
  }
  walkChildren(element, out, baseUrl); // span, font, abbr, custom elements…: inline
}

/** The element's content as finished Markdown of its own. */
function inner(element: WalkNode, baseUrl: string): string {
  const sub = new Builder();
  walkChildren(element, sub, baseUrl);
  return sub.result();
}

function oneLine(text: string): string {
  return text.replace(/\s*\n+\s*/g, " ").trim();
}

/**
 * The element's inline text, written into a builder of its own (so that wrapping it never copies
 * the paragraph around it); undefined when it held blocks, which are then moved to `out` as they
 * are (a `<b>` or `<a>` around paragraphs is not wrapped).
 */
function inlineOf(element: WalkNode, out: Builder, baseUrl: string): string | undefined {
  const sub = new Builder();
  walkChildren(element, sub, baseUrl);
  if (sub.parts.length === 0) return sub.inline;
  out.flush();
  out.parts.push(...sub.parts);
  out.inline = sub.inline;
  return undefined;
}

/** `mark` around the element's inline text, spaces kept outside. */
function wrapInline(element: WalkNode, out: Builder, baseUrl: string, mark: string): void {
  const text = inlineOf(element, out, baseUrl);
  if (text !== undefined) out.inline += around(text, mark, mark);
}

/** `text` between `open` and `close`, its outer spaces kept outside; empty text stays as is. */
function around(text: string, open: string, close: string): string {
  const trimmed = text.trim();
  if (trimmed === "") return text;
  const lead = text.startsWith(" ") ? " " : "";
  const tail = text.endsWith(" ") ? " " : "";
  return `${lead}${open}${trimmed}${close}${tail}`;
}

/** `[text](absolute url)`; mailto: and tel: kept; a link around blocks is left as its blocks. */
function link(element: DomElement & WalkNode, out: Builder, baseUrl: string): void {
  const text = inlineOf(element, out, baseUrl);
  if (text === undefined) return;
  const target = (element.getAttribute("href") ?? "").trim();
  const url = /^(mailto|tel):/i.test(target) ? target : absoluteHttpUrl(target, baseUrl);
  if (!url || text.trim() === "") {
    out.inline += text;
    return;
  }
  const escaped = url.replace(/[()\s]/g, (c) => encodeURIComponent(c));
  out.inline += around(text, "[", `](${escaped})`);
}

const LIST_ITEM = /^(?:- |\d+\. )/;

/** Items as `- ` or `n. ` lines, an item's further lines indented under its text. */
function list(element: DomElement & WalkNode, ordered: boolean, baseUrl: string): string {
  const items: string[] = [];
  let number = Number.parseInt(element.getAttribute("start") ?? "1", 10);
  if (!Number.isFinite(number)) number = 1;
  const children = element.childNodes;
  const loose = new Builder(); // text or elements directly in the list, outside any item
  for (let i = 0; i < children.length; i++) {
    const child = children[i]!;
    if (child.nodeType !== ELEMENT_NODE || child.localName !== "li") {
      walk(child, loose, baseUrl);
      continue;
    }
    const strayText = loose.result("\n");
    if (strayText !== "") items.push(strayText);
    loose.parts.length = 0;
    const sub = new Builder();
    walkChildren(child, sub, baseUrl);
    sub.flush();
    // A nested list follows its item's text on the next line, as a tight list.
    const text = sub.parts.reduce(
      (all, part) => (all === "" ? part : `${all}${LIST_ITEM.test(part) ? "\n" : "\n\n"}${part}`),
      "",
    );
    if (text === "") continue;
    const marker = ordered ? `${number++}. ` : "- ";
    const indent = " ".repeat(marker.length);
    items.push(marker + text.replace(/\n(?=[^\n])/g, `\n${indent}`));
  }
  const strayText = loose.result("\n");
  if (strayText !== "") items.push(strayText);
  return items.join("\n");
}

/** A definition list as `term` lines each followed by its `: definition` lines. */
function definitions(element: WalkNode, baseUrl: string): string {
  const lines: string[] = [];
  const children = element.childNodes;
  for (let i = 0; i < children.length; i++) {
    const child = children[i]!;
    if (child.nodeType !== ELEMENT_NODE) continue;
    if (child.localName === "dt" || child.localName === "dd") {
      const text = oneLine(inner(child, baseUrl));
      if (text !== "") lines.push(child.localName === "dd" ? `: ${text}` : text);
    } else {
      // A <div> grouping a term with its definitions (allowed by HTML).
      const text = definitions(child, baseUrl);
      if (text !== "") lines.push(text);
    }
  }
  return lines.join("\n");
}

/**
 * A data table as pipe rows, a header separator under the first; a cell's lists and line breaks
 * become one line. A layout table (a cell holding another table, or paragraphs of prose) is
 * written as its cells' blocks instead, so the text of a page laid out in tables stays in
 * paragraphs.
 */
const LAYOUT_CELL_CHARS = 400;

function table(element: DomElement & WalkNode, out: Builder, baseUrl: string): void {
  const rows: string[][] = [];
  const cellBlocks: string[] = [];
  let caption = "";
  let layout = false;
  const visitRows = (node: WalkNode) => {
    const children = node.childNodes;
    for (let i = 0; i < children.length; i++) {
      const child = children[i]!;
      if (child.nodeType !== ELEMENT_NODE) continue;
      const tag = child.localName;
      if (tag === "thead" || tag === "tbody" || tag === "tfoot") visitRows(child);
      else if (tag === "caption") caption = oneLine(inner(child, baseUrl));
      else if (tag === "tr") {
        const cells: string[] = [];
        const rowChildren = child.childNodes;
        for (let j = 0; j < rowChildren.length; j++) {
          const cell = rowChildren[j]!;
          if (cell.localName !== "td" && cell.localName !== "th") continue;
          const sub = new Builder();
          walkChildren(cell, sub, baseUrl);
          const text = sub.result();
          // A table of its own, or paragraphs of prose: the table lays out a page.
          if (
            sub.parts.some((part) => part.startsWith("| ")) ||
            (sub.parts.length > 1 && text.length > LAYOUT_CELL_CHARS)
          ) {
            layout = true;
          }
          cellBlocks.push(text);
          cells.push(oneLine(text).replace(/\|/g, "\\|"));
        }
        rows.push(cells);
      }
    }
  };
  visitRows(element);
  if (caption !== "") out.block(caption);
  if (layout) {
    for (const text of cellBlocks) out.block(text);
    return;
  }
  const written = rows.filter((cells) => cells.some((c) => c !== ""));
  if (written.length === 0) return;
  const lines = written.map((cells) => `| ${cells.join(" | ")} |`);
  lines.splice(1, 0, `|${" --- |".repeat(Math.max(written[0]!.length, 1))}`);
  out.block(lines.join("\n"));
}

/**
 * The Markdown cut to at most `maxChars`, at the last paragraph boundary that keeps at least half
 * of the allowance (else the last line break, else the last space, else a hard cut).
 */
export function capMarkdown(
  markdown: string,
  maxChars: number,
): { markdown: string; truncated: boolean } {
  if (markdown.length <= maxChars) return { markdown, truncated: false };
  if (maxChars <= 0) return { markdown: "", truncated: true };
  const head = markdown.slice(0, maxChars + 1);
  const floor = Math.floor(maxChars / 2);
  for (const boundary of ["\n\n", "\n", " "]) {
    const at = head.lastIndexOf(boundary, maxChars - boundary.length + 1);
    if (at >= floor) return { markdown: markdown.slice(0, at).trimEnd(), truncated: true };
  }
  return { markdown: markdown.slice(0, maxChars), truncated: true };
}
