import { collapseWhitespace, type DomDocument, type DomElement } from "./extract-dom.ts";

/**
 * The structured data of a page, read from its DOM before anything rewrites it: JSON-LD blocks,
 * microdata items, OpenGraph properties and the other meta tags. Nothing is interpreted here;
 * `extract-structured-values.ts` maps it to output columns.
 */

export type JsonLdObject = Record<string, unknown>;

export type MicrodataValue = string | MicrodataItem;

export interface MicrodataItem {
  /** The `itemtype` attribute as written (one or more URLs), "" when the item has none. */
  type: string;
  /** `itemid`, when the item has one. */
  id?: string;
  /** Property name → value; a property given several times holds an array, in page order. */
  properties: Record<string, MicrodataValue | MicrodataValue[]>;
}

export interface StructuredData {
  /** Every JSON-LD object, top-level arrays and `@graph` lists flattened, in page order. */
  jsonLd: JsonLdObject[];
  /** JSON-LD blocks skipped because their JSON did not parse. */
  jsonLdErrors: number;
  /** Top-level microdata items; nested items are property values. */
  microdata: MicrodataItem[];
  /** `og:*` properties, keys lower-cased with their prefix (`og:title`); the first one wins. */
  openGraph: Record<string, string>;
  /** Every other `<meta name|property content>`: description, keywords, author, twitter:*, … */
  meta: Record<string, string>;
}

export function emptyStructuredData(): StructuredData {
  return { jsonLd: [], jsonLdErrors: 0, microdata: [], openGraph: {}, meta: {} };
}

export function extractStructuredData(document: DomDocument, baseUrl: string): StructuredData {
  const structured = emptyStructuredData();
  readJsonLd(document, structured);
  structured.microdata = readMicrodata(document, baseUrl);
  readMetaTags(document, structured);
  return structured;
}

// ---------------------------------------------------------------------------------------------
// JSON-LD

function readJsonLd(document: DomDocument, into: StructuredData): void {
  const scripts = document.querySelectorAll("script[type]");
  for (let i = 0; i < scripts.length; i++) {
    const script = scripts[i]!;
    const type = (script.getAttribute("type") ?? "").split(";")[0]!.trim().toLowerCase();
    if (type !== "application/ld+json") continue;
    const parsed = parseJsonLdText(script.textContent ?? "");
    if (parsed === undefined) {
      into.jsonLdErrors++;
      continue;
    }
    flattenJsonLd(parsed, into.jsonLd, undefined, 0);
  }
}

const UNPARSED = Symbol("unparsed");

function tryJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return UNPARSED;
  }
}

/** The block's JSON, also when wrapped in HTML comments or CDATA or ended by a `;`. */
function parseJsonLdText(text: string): unknown {
  const trimmed = text.trim();
  if (trimmed === "") return undefined;
  const first = tryJson(trimmed);
  if (first !== UNPARSED) return first;
  const unwrapped = trimmed
    .replace(/^(?:<!--|\/\/\s*<!\[CDATA\[|\/\*\s*<!\[CDATA\[\s*\*\/|<!\[CDATA\[)/, "")
    .replace(/(?:-->|\/\/\s*\]\]>|\/\*\s*\]\]>\s*\*\/|\]\]>)$/, "")
    .trim()
    .replace(/;+$/, "");
  if (unwrapped === trimmed) return undefined;
  const second = tryJson(unwrapped);
  return second === UNPARSED ? undefined : second;
}

function isPlainObject(value: unknown): value is JsonLdObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function flattenJsonLd(value: unknown, out: JsonLdObject[], context: unknown, depth: number): void {
  if (depth > 8) return;
  if (Array.isArray(value)) {
    for (const item of value) flattenJsonLd(item, out, context, depth + 1);
    return;
  }
  if (!isPlainObject(value)) return;
  const ownContext = value["@context"] ?? context;
  const graph = value["@graph"];
  if (graph === undefined) {
    out.push(
      ownContext !== undefined && !("@context" in value)
        ? { "@context": ownContext, ...value }
        : value,
    );
    return;
  }
  // A wrapper that says more than its context and graph is a node too.
  const rest = Object.keys(value).filter((key) => key !== "@context" && key !== "@graph");
  if (rest.length > 0) {
    const node: JsonLdObject = {};
    if (ownContext !== undefined) node["@context"] = ownContext;
    for (const key of rest) node[key] = value[key];
    out.push(node);
  }
  flattenJsonLd(graph, out, ownContext, depth + 1);
}

// ---------------------------------------------------------------------------------------------
// Microdata (WHATWG HTML § microdata, without the itemref cycle corner cases)

const SRC_ELEMENTS = new Set(["audio", "embed", "iframe", "img", "source", "track", "video"]);
const HREF_ELEMENTS = new Set(["a", "area", "link"]);
const MAX_ITEM_DEPTH = 12;

function readMicrodata(document: DomDocument, baseUrl: string): MicrodataItem[] {
  const roots = document.querySelectorAll("[itemscope]");
  const items: MicrodataItem[] = [];
  for (let i = 0; i < roots.length; i++) {
    const element = roots[i]!;
    if (element.hasAttribute("itemprop")) continue; // a nested item: a property of another
    items.push(readItem(element, document, baseUrl, 0));
  }
  return items;
}

function readItem(
  element: DomElement,
  document: DomDocument,
  baseUrl: string,
  depth: number,
): MicrodataItem {
  const item: MicrodataItem = {
    type: collapseWhitespace(element.getAttribute("itemtype")),
    properties: {},
  };
  const itemId = element.getAttribute("itemid")?.trim();
  if (itemId) item.id = itemId;
  if (depth >= MAX_ITEM_DEPTH) return item;
  const visit = (node: DomElement): void => {
    const children = node.children;
    for (let i = 0; i < children.length; i++) {
      const child = children[i]!;
      if (child.hasAttribute("itemprop")) addProperty(item, child, document, baseUrl, depth);
      if (!child.hasAttribute("itemscope")) visit(child);
    }
  };
  visit(element);
  for (const id of collapseWhitespace(element.getAttribute("itemref")).split(" ")) {
    if (id === "") continue;
    const referenced = document.getElementById(id);
    if (!referenced) continue;
    if (referenced.hasAttribute("itemprop"))
      addProperty(item, referenced, document, baseUrl, depth);
    if (!referenced.hasAttribute("itemscope")) visit(referenced);
  }
  return item;
}

function addProperty(
  item: MicrodataItem,
  element: DomElement,
  document: DomDocument,
  baseUrl: string,
  depth: number,
): void {
  const value = propertyValue(element, document, baseUrl, depth);
  for (const name of collapseWhitespace(element.getAttribute("itemprop")).split(" ")) {
    if (name === "" || name === "__proto__") continue;
    const existing = Object.hasOwn(item.properties, name) ? item.properties[name] : undefined;
    if (existing === undefined) item.properties[name] = value;
    else if (Array.isArray(existing)) existing.push(value);
    else item.properties[name] = [existing, value];
  }
}

function propertyValue(
  element: DomElement,
  document: DomDocument,
  baseUrl: string,
  depth: number,
): MicrodataValue {
  if (element.hasAttribute("itemscope")) return readItem(element, document, baseUrl, depth + 1);
  const tag = element.localName;
  if (tag === "meta") return (element.getAttribute("content") ?? "").trim();
  if (SRC_ELEMENTS.has(tag)) return resolveUrl(element.getAttribute("src"), baseUrl);
  if (HREF_ELEMENTS.has(tag)) return resolveUrl(element.getAttribute("href"), baseUrl);
  if (tag === "object") return resolveUrl(element.getAttribute("data"), baseUrl);
  if ((tag === "data" || tag === "meter") && element.hasAttribute("value")) {
    return (element.getAttribute("value") ?? "").trim();
  }
  if (tag === "time" && element.hasAttribute("datetime")) {
    return (element.getAttribute("datetime") ?? "").trim();
  }
  return collapseWhitespace(element.textContent);
}

function resolveUrl(value: string | null, baseUrl: string): string {
  const raw = (value ?? "").trim();
  if (raw === "") return "";
  try {
    return new URL(raw, baseUrl).href;
  } catch {
    return raw;
  }
}

// ---------------------------------------------------------------------------------------------
// OpenGraph and meta tags

function readMetaTags(document: DomDocument, into: StructuredData): void {
  const metas = document.querySelectorAll("meta[content]");
  for (let i = 0; i < metas.length; i++) {
    const meta = metas[i]!;
    const content = collapseWhitespace(meta.getAttribute("content"));
    if (content === "") continue;
    for (const attribute of ["property", "name"]) {
      const key = collapseWhitespace(meta.getAttribute(attribute)).toLowerCase();
      if (key === "" || key === "__proto__") continue;
      const target = key.startsWith("og:") ? into.openGraph : into.meta;
      if (!Object.hasOwn(target, key)) target[key] = content;
    }
  }
}
