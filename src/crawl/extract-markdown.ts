import TurndownService from "turndown";
import { absoluteHttpUrl, type DomElement } from "./extract-dom.ts";

/**
 * HTML → Markdown for the extraction prompt, with turndown: ATX headings, `-` lists, fenced code,
 * links made absolute, tables as pipe rows, and nothing that is not text (scripts, styles,
 * images, form controls).
 */

/** The page's base URL while one conversion runs (turndown's rules are shared and synchronous). */
let currentBaseUrl = "about:blank";

const service = createService();

function createService(): TurndownService {
  const turndown = new TurndownService({
    headingStyle: "atx",
    bulletListMarker: "-",
    codeBlockStyle: "fenced",
    emDelimiter: "_",
    strongDelimiter: "**",
    hr: "---",
  });
  turndown.remove([
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
  ] as TurndownService.Filter);
  // Images have a standard rule, which wins over remove(): drop them with a rule of our own.
  turndown.addRule("noImages", { filter: "img", replacement: () => "" });
  // svg is not in the HTML tag map the typings know, hence a function filter.
  turndown.remove((node) => asElement(node).localName === "svg");

  turndown.addRule("absoluteLinks", {
    filter: (node) => asElement(node).localName === "a" && asElement(node).hasAttribute("href"),
    replacement: (content, node) => {
      const text = content.trim();
      if (text === "") return "";
      const href = asElement(node).getAttribute("href") ?? "";
      const url = /^(mailto|tel):/i.test(href.trim())
        ? href.trim()
        : absoluteHttpUrl(href, currentBaseUrl);
      return url ? `[${text}](${url.replace(/[()]/g, (c) => encodeURIComponent(c))})` : text;
    },
  });

  turndown.addRule("tableCell", {
    filter: ["th", "td"],
    replacement: (content) =>
      ` ${content
        .replace(/\s*\n+\s*/g, " ")
        .replace(/\|/g, "\\|")
        .trim()} |`,
  });
  turndown.addRule("tableRow", {
    filter: "tr",
    replacement: (content, node) => {
      const row = asElement(node);
      let out = `|${content}\n`;
      if (isFirstRow(row)) {
        let cells = 0;
        for (let i = 0; i < row.children.length; i++) {
          const tag = row.children[i]!.localName;
          if (tag === "td" || tag === "th") cells++;
        }
        out += `|${" --- |".repeat(Math.max(cells, 1))}\n`;
      }
      return out;
    },
  });
  turndown.addRule("tableSection", {
    filter: ["thead", "tbody", "tfoot"],
    replacement: (content) => content,
  });
  turndown.addRule("tableCaption", {
    filter: "caption",
    replacement: (content) => `${content.trim()}\n\n`,
  });
  turndown.addRule("table", {
    filter: "table",
    replacement: (content) => `\n\n${content.trim()}\n\n`,
  });
  return turndown;
}

function asElement(node: unknown): DomElement {
  return node as DomElement;
}

function isFirstRow(row: DomElement): boolean {
  let table = row.parentElement;
  while (table && table.localName !== "table") table = table.parentElement;
  return table !== null && table.querySelector("tr") === row;
}

/** Markdown of an element (a Readability article or a page's body), links resolved on `baseUrl`. */
export function htmlToMarkdown(root: DomElement, baseUrl: string): string {
  currentBaseUrl = baseUrl;
  try {
    const markdown = service.turndown(root);
    return markdown
      .replace(/[ \t]+\n/g, "\n")
      .replace(/\n{3,}/g, "\n\n")
      .trim();
  } finally {
    currentBaseUrl = "about:blank";
  }
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
