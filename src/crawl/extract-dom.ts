import { parseHTML } from "linkedom";

/**
 * The little of the DOM that page extraction uses, typed here because the project compiles
 * without the DOM lib. linkedom provides it: a light parser, far cheaper than jsdom, and enough
 * for Readability and the Markdown walk (extract-markdown.ts).
 */

export interface DomNode {
  readonly nodeType: number;
  readonly textContent: string | null;
}

export interface DomElement extends DomNode {
  readonly localName: string;
  readonly children: ArrayLike<DomElement>;
  readonly parentElement: DomElement | null;
  getAttribute(name: string): string | null;
  hasAttribute(name: string): boolean;
  querySelector(selectors: string): DomElement | null;
  querySelectorAll(selectors: string): ArrayLike<DomElement>;
  getElementsByTagName(name: string): ArrayLike<DomElement>;
  remove(): void;
}

export interface DomDocument extends DomNode {
  readonly title: string;
  readonly body: DomElement | null;
  readonly documentElement: DomElement | null;
  querySelector(selectors: string): DomElement | null;
  querySelectorAll(selectors: string): ArrayLike<DomElement>;
  getElementById(id: string): DomElement | null;
}

export function parseHtmlDocument(html: string): DomDocument {
  // linkedom wants a whole document; a fragment or an empty body still gets <html><body>.
  const source = /<html[\s>]/i.test(html)
    ? html
    : `<!doctype html><html><body>${html}</body></html>`;
  return (parseHTML(source) as unknown as { document: DomDocument }).document;
}

/** Whitespace runs (including non-breaking spaces) collapsed to one space, ends trimmed. */
export function collapseWhitespace(text: string | null | undefined): string {
  return (text ?? "").replace(/[\s\u00a0]+/g, " ").trim();
}

/**
 * An absolute http(s) URL for `href` against `base`, without its fragment; undefined for other
 * schemes (mailto:, javascript:, data:, tel:) and for what does not parse.
 */
export function absoluteHttpUrl(href: string | null | undefined, base: string): string | undefined {
  if (href == null) return undefined;
  const trimmed = href.trim();
  if (trimmed === "") return undefined;
  let parsed: URL;
  try {
    parsed = new URL(trimmed, base);
  } catch {
    return undefined;
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") return undefined;
  parsed.hash = "";
  return parsed.href;
}

/** The page's base URL: its `<base href>` resolved against the fetched URL, else the URL. */
export function documentBaseUrl(document: DomDocument, url: string): string {
  const baseHref = document.querySelector("base[href]")?.getAttribute("href");
  if (baseHref) {
    try {
      return new URL(baseHref.trim(), url).href;
    } catch {
      // An unparsable <base> is ignored, as browsers do.
    }
  }
  return url;
}
