// Reduces an HTML document to the text a reader sees, for full-text indexing of a local corpus.
// htmlparser2 tolerates broken markup and decodes entities; we only decide what counts as text.
import { Parser } from "htmlparser2";

export interface HtmlText {
  /** The <title>, if any. */
  title: string | undefined;
  /** The first <h1>…<h6>, if any: the fallback title. */
  heading: string | undefined;
  /** Visible text, one line per block element. */
  text: string;
}

// Their content is code, styling or invisible, and would pollute the index with tokens like
// `function` or `px` that no one searches for.
const SKIPPED = new Set([
  "script",
  "style",
  "noscript",
  "template",
  "svg",
  "canvas",
  "iframe",
  "head",
]);

// Block-level elements start a new line, so words of adjacent blocks do not merge.
const BLOCKS = new Set([
  "address",
  "article",
  "aside",
  "blockquote",
  "br",
  "dd",
  "div",
  "dl",
  "dt",
  "fieldset",
  "figcaption",
  "figure",
  "footer",
  "form",
  "h1",
  "h2",
  "h3",
  "h4",
  "h5",
  "h6",
  "header",
  "hr",
  "li",
  "main",
  "nav",
  "ol",
  "p",
  "pre",
  "section",
  "table",
  "td",
  "th",
  "tr",
  "ul",
]);

const HEADINGS = new Set(["h1", "h2", "h3", "h4", "h5", "h6"]);

export function htmlToText(html: string): HtmlText {
  const parts: string[] = [];
  let skipDepth = 0;
  let inTitle = false;
  let title = "";
  let headingDepth = 0;
  let heading = "";
  let headingDone = false;
  const parser = new Parser(
    {
      onopentag(name) {
        if (name === "title") inTitle = true;
        else if (SKIPPED.has(name)) skipDepth++;
        if (BLOCKS.has(name)) parts.push("\n");
        if (HEADINGS.has(name) && !headingDone) headingDepth++;
      },
      ontext(text) {
        if (inTitle) title += text;
        else if (skipDepth === 0) {
          parts.push(text);
          if (headingDepth > 0) heading += text;
        }
      },
      onclosetag(name) {
        if (name === "title") inTitle = false;
        else if (SKIPPED.has(name) && skipDepth > 0) skipDepth--;
        if (BLOCKS.has(name)) parts.push("\n");
        if (HEADINGS.has(name) && headingDepth > 0) {
          headingDepth--;
          if (headingDepth === 0 && heading.trim() !== "") headingDone = true;
        }
      },
    },
    { decodeEntities: true, lowerCaseTags: true },
  );
  parser.write(html);
  parser.end();
  return {
    title: collapse(title) || undefined,
    heading: collapse(heading) || undefined,
    text: parts
      .join("")
      .split("\n")
      .map(collapse)
      .filter((line) => line !== "")
      .join("\n"),
  };
}

function collapse(text: string): string {
  return text.replace(/\s+/g, " ").trim();
}
