import { isProbablyReaderable, Readability } from "@mozilla/readability";
import {
  absoluteHttpUrl,
  collapseWhitespace,
  documentBaseUrl,
  parseHtmlDocument,
  type DomDocument,
  type DomElement,
} from "./extract-dom.ts";
import { compactHtml } from "./compact-html.ts";
import { capMarkdown, htmlToMarkdown } from "./extract-markdown.ts";
import { extractStructuredData, type StructuredData } from "./extract-structured-data.ts";
import { stripBoilerplate } from "./strip-boilerplate.ts";
import {
  readPageMetadata,
  withArticleMetadata,
  type ArticleMetadata,
  type PageMetadata,
} from "./page-metadata.ts";

export type { PageMetadata } from "./page-metadata.ts";
export type {
  JsonLdObject,
  MicrodataItem,
  MicrodataValue,
  StructuredData,
} from "./extract-structured-data.ts";

/**
 * What the extract stage needs from a fetched page: the main text as Markdown (Readability's
 * article, or when the page has no article its body without boilerplate, strip-boilerplate.ts),
 * the links to follow, and the structured data. One parse with linkedom; the structured data and links are read before
 * Readability rewrites the DOM.
 */

export interface PageLink {
  /** Absolute http(s) URL without its fragment; each URL appears once, in page order. */
  url: string;
  /** The anchor's text (else its aria-label, title or image alt), whitespace collapsed. */
  text: string;
}

export interface PageContent {
  title: string;
  markdown: string;
  /** Where the Markdown came from: Readability's article, or the <body> without boilerplate. */
  source: "article" | "body";
  /** The Markdown was cut at `maxMarkdownChars`. */
  truncated: boolean;
  links: PageLink[];
  structured: StructuredData;
  /** Title, description, site name, byline, dates, language, canonical URL. */
  metadata: PageMetadata;
}

export interface PageContentOptions {
  /** Default 100,000; the Markdown is cut at a paragraph boundary below it. */
  maxMarkdownChars?: number;
}

export const DEFAULT_MAX_MARKDOWN_CHARS = 100_000;

export function extractPageContent(
  html: string,
  url: string,
  options: PageContentOptions = {},
): PageContent {
  const maxChars = options.maxMarkdownChars ?? DEFAULT_MAX_MARKDOWN_CHARS;
  html = compactHtml(html);
  const document = parseHtmlDocument(html);
  const baseUrl = documentBaseUrl(document, url);
  const structured = extractStructuredData(document, baseUrl);
  const links = extractLinks(document, baseUrl, absoluteHttpUrl(url, url));
  const headMetadata = readPageMetadata(document, structured, baseUrl);
  const fallbackTitle =
    collapseWhitespace(document.title) ||
    structured.openGraph["og:title"] ||
    collapseWhitespace(document.querySelector("h1")?.textContent);

  const reading = readArticle(document);
  const article = reading.article;
  let title: string;
  let body: string;
  let source: PageContent["source"];
  if (article) {
    title = article.title || fallbackTitle;
    body = htmlToMarkdown(article.content, baseUrl);
    source = "article";
  } else {
    // When Readability ran, it has rewritten the DOM: the fallback reads a fresh one.
    const bodyElement = reading.touched ? parseHtmlDocument(html).body : document.body;
    title = fallbackTitle;
    if (bodyElement) stripBoilerplate(bodyElement);
    body = bodyElement ? htmlToMarkdown(bodyElement, baseUrl) : "";
    source = "body";
  }
  const markdown = withTitleHeading(title, body);
  const capped = capMarkdown(markdown, maxChars);
  const metadata = article ? withArticleMetadata(headMetadata, article.metadata) : headMetadata;
  return {
    title,
    markdown: capped.markdown,
    source,
    truncated: capped.truncated,
    links,
    structured,
    metadata,
  };
}

interface ArticleReading {
  /** Readability's article; none when the page has no article (Firefox's reader-view test). */
  article?: { title: string; content: DomElement; metadata: ArticleMetadata };
  /** Readability ran, and so rewrote the DOM. */
  touched: boolean;
}

function readArticle(document: DomDocument): ArticleReading {
  // Readability's typings name the DOM lib's Document, which this project does not load.
  try {
    if (!isProbablyReaderable(document)) return { touched: false };
  } catch {
    return { touched: false };
  }
  try {
    const reader = new Readability<DomElement>(document, {
      serializer: (node) => node as DomElement,
    });
    withFastTagQueries(reader);
    const parsed = reader.parse();
    if (!parsed?.content || collapseWhitespace(parsed.textContent) === "") return { touched: true };
    return {
      article: {
        title: collapseWhitespace(parsed.title),
        content: parsed.content,
        metadata: {
          byline: parsed.byline,
          siteName: parsed.siteName,
          publishedTime: parsed.publishedTime,
          excerpt: parsed.excerpt,
          lang: parsed.lang,
        },
      },
      touched: true,
    };
  } catch {
    // Readability on a DOM it cannot walk: the body fallback still gives the text.
    return { touched: true };
  }
}

/**
 * Readability finds elements by tag with `querySelectorAll("p,td,pre")`, which linkedom answers
 * through css-select, compiling the selector on every call: a twentieth of a real page's CPU.
 * The same elements in the same (document) order come from `getElementsByTagName` for one tag
 * and from one walk of the subtree for several. Tag names are compared in upper case: elements
 * Readability creates (`createElement("P")`) keep an upper-case localName in linkedom, and the
 * selector matched them whatever their case. This sets an own property on this one instance
 * (Readability 0.6's `_getAllNodesWithTag`); a version without that method is left as it is.
 */
function withFastTagQueries(reader: object): void {
  if (typeof (reader as { _getAllNodesWithTag?: unknown })._getAllNodesWithTag !== "function") {
    return;
  }
  Object.defineProperty(reader, "_getAllNodesWithTag", { value: elementsWithTags });
}

function elementsWithTags(root: DomElement, tagNames: string[]): ArrayLike<DomElement> {
  // linkedom's getElementsByTagName matches an upper-case name against any case in an HTML page.
  if (tagNames.length === 1) return root.getElementsByTagName(tagNames[0]!.toUpperCase());
  const wanted = new Set(tagNames.map((name) => name.toLowerCase()));
  const found: DomElement[] = [];
  const visit = (element: DomElement) => {
    const children = element.children;
    for (let i = 0; i < children.length; i++) {
      const child = children[i]!;
      if (wanted.has(child.localName.toLowerCase())) found.push(child);
      visit(child);
    }
  };
  visit(root);
  return found;
}

/** The title as a level-1 heading on top, unless the text already has it as a heading. */
function withTitleHeading(title: string, markdown: string): string {
  if (title === "") return markdown;
  const wanted = title.toLowerCase();
  for (const line of markdown.split("\n", 40)) {
    const heading = /^#{1,6}\s+(.*)$/.exec(line);
    if (heading && collapseWhitespace(heading[1]!.replace(/\\/g, "")).toLowerCase() === wanted) {
      return markdown;
    }
  }
  return markdown === "" ? `# ${title}` : `# ${title}\n\n${markdown}`;
}

/** Every http(s) link but the page's own URL (`#top`, `#section` links). */
function extractLinks(
  document: DomDocument,
  baseUrl: string,
  pageUrl: string | undefined,
): PageLink[] {
  const anchors = document.querySelectorAll("a[href], area[href]");
  const links: PageLink[] = [];
  const seen = new Map<string, PageLink>();
  for (let i = 0; i < anchors.length; i++) {
    const anchor = anchors[i]!;
    const url = absoluteHttpUrl(anchor.getAttribute("href"), baseUrl);
    if (!url || url === pageUrl) continue;
    const text = linkText(anchor);
    const existing = seen.get(url);
    if (existing) {
      if (existing.text === "" && text !== "") existing.text = text;
      continue;
    }
    const link = { url, text };
    seen.set(url, link);
    links.push(link);
  }
  return links;
}

function linkText(anchor: DomElement): string {
  return (
    collapseWhitespace(anchor.textContent) ||
    collapseWhitespace(anchor.getAttribute("aria-label")) ||
    collapseWhitespace(anchor.getAttribute("title")) ||
    collapseWhitespace(anchor.getAttribute("alt")) ||
    collapseWhitespace(anchor.querySelector("img[alt]")?.getAttribute("alt"))
  );
}
