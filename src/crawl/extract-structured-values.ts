import {
  checkOutputValue,
  convertOutputValue,
  dateOfIsoTimestamp,
  isIsoDate,
  type OutputSpec,
  type OutputType,
} from "../core/output-types.ts";
import type { MicrodataItem, StructuredData } from "./extract-structured-data.ts";

/**
 * Output columns answered from a page's structured data, at no LLM cost: schema.org properties
 * (JSON-LD, then microdata) mapped to common column names, explicit hints, then OpenGraph and
 * meta text. A value is kept only when it converts exactly to the column's declared type
 * ("120" → 120, never "about 120" → 120) and passes that type's check in src/core/output-types.ts
 * (the one an LLM's answers pass too); otherwise the column is left to the LLM.
 *
 * Confidence: 0.95 for a schema.org property whose value already has the column's type, 0.8 for a
 * mapped property or a converted value, 0.6 for OpenGraph / meta text.
 */

export type StructuredOrigin = "json-ld" | "microdata" | "opengraph" | "meta";

export interface StructuredValue {
  value: unknown;
  confidence: number;
  origin: StructuredOrigin;
  /** The schema.org type of the node the value came from (JSON-LD and microdata). */
  schemaType?: string;
  /** The property path in that node (`numberOfEmployees.value`), or the meta key (`og:title`). */
  path: string;
}

/** Output name → value; outputs with no exact answer are absent. */
export type StructuredValues = Record<string, StructuredValue>;

/** Output name → property paths to try first: `numberOfEmployees.value`, `Organization.email`,
 * `og:title`, `meta:description`. */
export type StructuredHints = Readonly<Record<string, readonly string[]>>;

export const CONFIDENCE_DIRECT = 0.95;
export const CONFIDENCE_MAPPED = 0.8;
export const CONFIDENCE_META = 0.6;

type OutputLike = Pick<OutputSpec, "name" | "type"> & { description?: string };

export function valuesFromStructuredData(
  structured: StructuredData,
  outputs: readonly OutputLike[],
  hints: StructuredHints = {},
): StructuredValues {
  const graph = buildGraph(structured);
  const values: StructuredValues = {};
  for (const output of outputs) {
    const found = valueForOutput(graph, structured, output, hints[output.name] ?? []);
    if (found) values[output.name] = found;
  }
  return values;
}

// ---------------------------------------------------------------------------------------------
// Nodes: top-level JSON-LD objects and microdata items, in one shape

type Group = "org" | "product" | "article" | "person" | "event" | "other";

interface GraphNode {
  origin: "json-ld" | "microdata";
  types: string[];
  group: Group;
  /** Named as the page's `mainEntity` or `about`. */
  main: boolean;
  data: Record<string, unknown>;
}

interface Graph {
  /** Entities first (main entities of a page before the rest), then every other node. */
  nodes: GraphNode[];
  /** Groups with a main entity: their other nodes (a publisher, a partner) answer nothing. */
  mainGroups: Set<Group>;
  ids: Map<string, Record<string, unknown>>;
}

const ORG_TYPES = new Set([
  "Organization",
  "Organisation",
  "Corporation",
  "LocalBusiness",
  "NGO",
  "FoodEstablishment",
  "Restaurant",
  "FastFoodRestaurant",
  "CafeOrCoffeeShop",
  "BarOrPub",
  "Bakery",
  "Brewery",
  "Winery",
  "Store",
  "Hotel",
  "LodgingBusiness",
  "ProfessionalService",
  "Dentist",
  "Physician",
  "AutoDealer",
  "CollegeOrUniversity",
  "Airline",
  "Consortium",
  "Cooperative",
  "LibrarySystem",
  "ResearchProject",
]);
const PRODUCT_TYPES = new Set([
  "Product",
  "ProductModel",
  "ProductGroup",
  "IndividualProduct",
  "SomeProducts",
  "Vehicle",
  "Car",
  "SoftwareApplication",
  "WebApplication",
  "MobileApplication",
  "Book",
]);

function groupOf(types: readonly string[]): Group {
  for (const type of types) {
    if (
      ORG_TYPES.has(type) ||
      /(Organization|Organisation|Business|Restaurant|Store|Shop)$/.test(type)
    ) {
      return "org";
    }
  }
  for (const type of types) if (PRODUCT_TYPES.has(type)) return "product";
  for (const type of types)
    if (/(Article|BlogPosting|Posting|Report)$/.test(type)) return "article";
  for (const type of types) if (type === "Person") return "person";
  for (const type of types) if (/Event$/.test(type)) return "event";
  return "other";
}

/** `https://schema.org/Restaurant`, `schema:Restaurant`, `Restaurant` → `Restaurant`. */
function localTypeName(type: string): string {
  const trimmed = type.trim();
  const cut = Math.max(
    trimmed.lastIndexOf("/"),
    trimmed.lastIndexOf("#"),
    trimmed.lastIndexOf(":"),
  );
  return cut >= 0 ? trimmed.slice(cut + 1) : trimmed;
}

function typesOf(value: unknown): string[] {
  if (typeof value === "string") return value.split(/\s+/).filter(Boolean).map(localTypeName);
  if (Array.isArray(value)) return value.flatMap((v) => typesOf(v));
  return [];
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function microdataToRecord(item: MicrodataItem, depth = 0): Record<string, unknown> {
  const record: Record<string, unknown> = { "@type": typesOf(item.type) };
  if (item.id) record["@id"] = item.id;
  for (const [name, value] of Object.entries(item.properties)) {
    const convert = (v: string | MicrodataItem): unknown =>
      typeof v === "string" ? v : depth < 12 ? microdataToRecord(v, depth + 1) : undefined;
    record[name] = Array.isArray(value) ? value.map(convert) : convert(value);
  }
  return record;
}

const ENTITY_ORDER: Group[] = ["org", "product", "article", "person", "event", "other"];

function buildGraph(structured: StructuredData): Graph {
  const ids = new Map<string, Record<string, unknown>>();
  const raw: { origin: GraphNode["origin"]; data: Record<string, unknown> }[] = [];
  for (const object of structured.jsonLd) {
    if (!isRecord(object)) continue;
    raw.push({ origin: "json-ld", data: object });
    const id = object["@id"];
    if (typeof id === "string" && Object.keys(object).some((k) => !k.startsWith("@"))) {
      if (!ids.has(id)) ids.set(id, object);
    }
  }
  for (const item of structured.microdata)
    raw.push({ origin: "microdata", data: microdataToRecord(item) });

  // A page's main entity (WebPage.mainEntity / about) comes first: on a page with a publisher and
  // a subject, the subject is what the page is about.
  const main = new Set<Record<string, unknown>>();
  const extra: typeof raw = [];
  for (const node of raw) {
    for (const key of ["mainEntity", "about"]) {
      for (const target of asArray(node.data[key])) {
        const resolved = resolveRef(target, ids);
        if (isRecord(resolved) && typesOf(resolved["@type"]).length > 0) {
          main.add(resolved);
          if (!raw.some((r) => r.data === resolved))
            extra.push({ origin: node.origin, data: resolved });
        }
      }
    }
  }
  const all = [...raw, ...extra].map((node): GraphNode => {
    const types = typesOf(node.data["@type"]);
    return { ...node, types, group: groupOf(types), main: main.has(node.data) };
  });
  const rank = (node: GraphNode) => ENTITY_ORDER.indexOf(node.group) * 2 + (node.main ? 0 : 1);
  const nodes = all
    .map((node, index) => ({ node, index }))
    .sort((a, b) => rank(a.node) - rank(b.node) || a.index - b.index)
    .map(({ node }) => node);
  const mainGroups = new Set(nodes.filter((node) => node.main).map((node) => node.group));
  return { nodes, mainGroups, ids };
}

function asArray(value: unknown): unknown[] {
  if (value === undefined || value === null) return [];
  return Array.isArray(value) ? value : [value];
}

/** `{"@id": "…"}` alone stands for the node with that id elsewhere in the page. */
function resolveRef(value: unknown, ids: Map<string, Record<string, unknown>>): unknown {
  if (!isRecord(value)) return value;
  const id = value["@id"];
  if (typeof id === "string" && Object.keys(value).every((k) => k.startsWith("@"))) {
    return ids.get(id) ?? value;
  }
  return value;
}

/** The value at a dotted path; through an array, the first element where the path resolves. */
function valueAtPath(
  value: unknown,
  path: readonly string[],
  ids: Map<string, Record<string, unknown>>,
  depth = 0,
): unknown {
  if (depth > 16) return undefined;
  const current = resolveRef(value, ids);
  if (path.length === 0) return current;
  if (Array.isArray(current)) {
    for (const element of current) {
      const found = valueAtPath(element, path, ids, depth + 1);
      if (found !== undefined) return found;
    }
    return undefined;
  }
  if (!isRecord(current)) return undefined;
  const [head, ...rest] = path as [string, ...string[]];
  if (!Object.hasOwn(current, head)) return undefined;
  const next = current[head];
  if (next === undefined || next === null) return undefined;
  return valueAtPath(next, rest, ids, depth + 1);
}

// ---------------------------------------------------------------------------------------------
// Column names → schema.org properties

interface Candidate {
  groups: readonly Group[];
  path: string;
  /** The property that means this column (else a related one, at mapped confidence). */
  direct: boolean;
}

interface FieldRule {
  names: readonly string[];
  candidates: readonly Candidate[];
  /** OpenGraph / meta keys, tried after every schema.org property. */
  meta?: readonly string[];
  /** Strips a URL scheme from text values (`mailto:`, `tel:`). */
  scheme?: RegExp;
}

const ORG: readonly Group[] = ["org"];
const PRODUCT: readonly Group[] = ["product"];
const ARTICLE: readonly Group[] = ["article"];
const ORG_PRODUCT: readonly Group[] = ["org", "product"];
const ANY_ENTITY: readonly Group[] = ["org", "product", "article", "person", "event"];

const d = (groups: readonly Group[], path: string): Candidate => ({ groups, path, direct: true });
const m = (groups: readonly Group[], path: string): Candidate => ({ groups, path, direct: false });

function addressRule(names: string[], property: string): FieldRule {
  return {
    names,
    candidates: [
      d(ORG, `address.${property}`),
      m(ORG, `location.address.${property}`),
      m(["event"], `location.address.${property}`),
    ],
  };
}

const RULES: readonly FieldRule[] = [
  {
    names: [
      "name",
      "company",
      "company_name",
      "organization",
      "organisation",
      "organization_name",
      "organisation_name",
      "business",
      "business_name",
      "restaurant",
      "restaurant_name",
    ],
    // Not og:site_name: on a news page that names the publisher, not the subject.
    candidates: [d(ORG, "name"), m(ORG, "legalName"), m(ORG, "alternateName")],
  },
  { names: ["legal_name", "registered_name"], candidates: [d(ORG, "legalName")] },
  { names: ["product", "product_name"], candidates: [d(PRODUCT, "name")] },
  {
    names: ["website", "url", "homepage", "home_page", "web_site", "website_url", "site_url"],
    candidates: [d(ORG, "url"), d(PRODUCT, "url")],
  },
  {
    names: [
      "founded",
      "founded_year",
      "founded_in",
      "founded_on",
      "year_founded",
      "founding_year",
      "founding_date",
      "date_founded",
      "foundation_year",
      "established",
      "year_established",
      "established_year",
      "inception",
      "incorporated",
      "incorporation_year",
    ],
    candidates: [d(ORG, "foundingDate")],
  },
  {
    names: [
      "employees",
      "employee_count",
      "employees_count",
      "number_of_employees",
      "num_employees",
      "headcount",
      "staff",
      "staff_count",
      "team_size",
      "company_size",
      "workforce",
    ],
    candidates: [d(ORG, "numberOfEmployees")],
  },
  {
    names: ["address", "location", "headquarters", "hq", "hq_address", "headquarters_address"],
    candidates: [d(ORG, "address"), m(ORG, "location.address"), m(["event"], "location.address")],
  },
  addressRule(["street", "street_address"], "streetAddress"),
  addressRule(["city", "town", "locality", "hq_city", "headquarters_city"], "addressLocality"),
  addressRule(["region", "state", "province", "address_region"], "addressRegion"),
  addressRule(["postal_code", "postcode", "zip", "zip_code", "zipcode"], "postalCode"),
  addressRule(["country", "country_code", "hq_country", "headquarters_country"], "addressCountry"),
  {
    names: ["telephone", "phone", "phone_number", "tel", "contact_phone"],
    candidates: [d(ORG, "telephone"), m(ORG, "contactPoint.telephone")],
    scheme: /^tel:/i,
  },
  {
    names: ["email", "email_address", "e_mail", "contact_email"],
    candidates: [d(ORG, "email"), m(ORG, "contactPoint.email")],
    scheme: /^mailto:/i,
  },
  {
    names: ["industry", "industries", "sector", "business_sector"],
    candidates: [d(ORG, "industry"), m(ORG, "knowsAbout")],
  },
  {
    names: [
      "description",
      "summary",
      "about",
      "overview",
      "bio",
      "company_description",
      "business_description",
    ],
    candidates: [d(ORG, "description"), d(PRODUCT, "description"), d(ARTICLE, "description")],
    meta: ["og:description", "description", "twitter:description"],
  },
  {
    names: ["title", "headline", "page_title", "article_title"],
    candidates: [d(ARTICLE, "headline"), m(ARTICLE, "name")],
    meta: ["og:title", "twitter:title"],
  },
  {
    names: ["cuisine", "cuisines", "serves_cuisine", "food_type"],
    candidates: [d(ORG, "servesCuisine")],
  },
  { names: ["price_range", "pricerange", "price_level"], candidates: [d(ORG, "priceRange")] },
  {
    names: ["opening_hours", "hours", "opening_times", "business_hours", "open_hours"],
    candidates: [d(ORG, "openingHours"), m(ORG, "openingHoursSpecification")],
  },
  {
    names: ["rating", "average_rating", "avg_rating", "rating_value", "stars", "review_score"],
    candidates: [d(ORG_PRODUCT, "aggregateRating.ratingValue")],
  },
  {
    names: ["review_count", "reviews", "reviews_count", "number_of_reviews", "rating_count"],
    candidates: [
      d(ORG_PRODUCT, "aggregateRating.reviewCount"),
      m(ORG_PRODUCT, "aggregateRating.ratingCount"),
    ],
  },
  {
    names: ["price", "product_price"],
    candidates: [d(PRODUCT, "offers.price"), m(PRODUCT, "offers.lowPrice")],
    meta: ["product:price:amount", "og:price:amount"],
  },
  {
    names: ["currency", "price_currency"],
    candidates: [d(PRODUCT, "offers.priceCurrency")],
    meta: ["product:price:currency", "og:price:currency"],
  },
  { names: ["brand", "brand_name"], candidates: [d(PRODUCT, "brand.name"), d(PRODUCT, "brand")] },
  { names: ["sku", "product_sku"], candidates: [d(PRODUCT, "sku")] },
  { names: ["logo", "logo_url"], candidates: [d(ORG, "logo.url"), d(ORG, "logo")] },
  {
    names: ["image", "image_url", "photo"],
    candidates: [d(ANY_ENTITY, "image.url"), d(ANY_ENTITY, "image")],
    meta: ["og:image"],
  },
  {
    names: ["author", "byline", "writer"],
    candidates: [d(ARTICLE, "author.name"), d(ARTICLE, "author")],
    meta: ["author", "article:author"],
  },
  {
    names: [
      "published",
      "published_at",
      "published_date",
      "date_published",
      "publication_date",
      "publish_date",
    ],
    candidates: [d(ARTICLE, "datePublished")],
    meta: ["article:published_time"],
  },
  {
    names: ["keywords", "tags"],
    candidates: [d(ARTICLE, "keywords")],
    meta: ["keywords", "news_keywords"],
  },
  {
    names: ["same_as", "social_links", "social_profiles", "social_media"],
    candidates: [d(ORG, "sameAs")],
  },
  { names: ["site_name"], candidates: [], meta: ["og:site_name"] },
];

/** `foundedYear`, `Founded year`, `founded-year` → `founded_year`. */
function normalizeName(name: string): string {
  return name
    .replace(/([a-z0-9])([A-Z])/g, "$1_$2")
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "_")
    .replace(/^_+|_+$/g, "");
}

const RULE_BY_NAME = new Map<string, FieldRule>();
for (const rule of RULES) for (const name of rule.names) RULE_BY_NAME.set(name, rule);

const YEAR_WORDS =
  /(^|_)(year|years|founded|founding|foundation|established|inception|incorporated|since)(_|$)/;

/** An integer column that holds a year: by its name, or its description says "year". */
function isYearColumn(output: OutputLike): boolean {
  return YEAR_WORDS.test(normalizeName(output.name)) || /\byear\b/i.test(output.description ?? "");
}

// ---------------------------------------------------------------------------------------------
// Finding a value for one output

function valueForOutput(
  graph: Graph,
  structured: StructuredData,
  output: OutputLike,
  hints: readonly string[],
): StructuredValue | undefined {
  const name = normalizeName(output.name);
  const rule = RULE_BY_NAME.get(name);
  const context: CoerceContext = {
    type: output.type,
    year: isYearColumn(output),
    scheme: rule?.scheme,
  };

  for (const hint of hints) {
    const found = fromHint(graph, structured, hint.trim(), context);
    if (found) return found;
  }
  for (const candidate of rule?.candidates ?? []) {
    const found = fromNodes(
      graph,
      candidate.groups,
      candidate.path.split("."),
      candidate.direct,
      context,
    );
    if (found) return found;
  }
  // A column named like a schema.org property of an entity (`priceRange`, `gtin13`, `slogan`).
  const generic = fromGenericProperty(graph, name, context);
  if (generic) return generic;
  for (const key of rule?.meta ?? []) {
    const found = fromMeta(structured, key, context);
    if (found) return found;
  }
  return undefined;
}

function fromHint(
  graph: Graph,
  structured: StructuredData,
  hint: string,
  context: CoerceContext,
): StructuredValue | undefined {
  if (hint === "") return undefined;
  if (hint.includes(":")) return fromMeta(structured, hint.replace(/^meta:/i, ""), context);
  const segments = hint.split(".");
  // `Organization.numberOfEmployees`: a leading capitalised segment names the node's type.
  const typeFilter = /^[A-Z]/.test(segments[0]!) ? segments.shift()! : undefined;
  if (segments.length === 0) return undefined;
  for (const node of graph.nodes) {
    if (typeFilter && !node.types.includes(typeFilter)) continue;
    const found = fromNode(graph, node, segments, true, context);
    if (found) return found;
  }
  return undefined;
}

function fromNodes(
  graph: Graph,
  groups: readonly Group[],
  path: readonly string[],
  direct: boolean,
  context: CoerceContext,
): StructuredValue | undefined {
  for (const node of graph.nodes) {
    if (!groups.includes(node.group) || !answersFor(graph, node)) continue;
    const found = fromNode(graph, node, path, direct, context);
    if (found) return found;
  }
  return undefined;
}

function answersFor(graph: Graph, node: GraphNode): boolean {
  return node.main || !graph.mainGroups.has(node.group);
}

function fromGenericProperty(
  graph: Graph,
  name: string,
  context: CoerceContext,
): StructuredValue | undefined {
  for (const node of graph.nodes) {
    if (node.group === "other" || !answersFor(graph, node)) continue;
    for (const key of Object.keys(node.data)) {
      if (key.startsWith("@") || normalizeName(key) !== name) continue;
      const found = fromNode(graph, node, [key], true, context);
      if (found) return found;
    }
  }
  return undefined;
}

function fromNode(
  graph: Graph,
  node: GraphNode,
  path: readonly string[],
  direct: boolean,
  context: CoerceContext,
): StructuredValue | undefined {
  const raw = valueAtPath(node.data, path, graph.ids);
  if (raw === undefined) return undefined;
  const coerced = storable(coerce(raw, context, graph.ids), context);
  if (!coerced) return undefined;
  // Microdata is all text: a text column read from it is direct, any other type a conversion.
  const value: StructuredValue = {
    value: coerced.value,
    confidence: direct && !coerced.converted ? CONFIDENCE_DIRECT : CONFIDENCE_MAPPED,
    origin: node.origin,
    path: [...path, ...coerced.subpath].join("."),
  };
  if (node.types[0]) value.schemaType = node.types[0];
  return value;
}

function fromMeta(
  structured: StructuredData,
  key: string,
  context: CoerceContext,
): StructuredValue | undefined {
  const lower = key.toLowerCase();
  const isOpenGraph = lower.startsWith("og:");
  const table = isOpenGraph ? structured.openGraph : structured.meta;
  if (!Object.hasOwn(table, lower)) return undefined;
  const text = table[lower]!;
  // Keywords are a comma-separated list by definition; any other text is one value.
  const raw =
    context.type === "text[]" && /(^|:)(keywords|news_keywords|tag)$/.test(lower)
      ? text
          .split(",")
          .map((s) => s.trim())
          .filter(Boolean)
      : text;
  const coerced = storable(coerce(raw, context, new Map()), context);
  if (!coerced) return undefined;
  return {
    value: coerced.value,
    confidence: CONFIDENCE_META,
    origin: isOpenGraph ? "opengraph" : "meta",
    path: lower,
  };
}

// ---------------------------------------------------------------------------------------------
// Exact conversions to the declared type

interface CoerceContext {
  type: OutputType;
  /** An integer column holding a year: an ISO date gives its year. */
  year: boolean;
  scheme: RegExp | undefined;
}

interface Coerced {
  value: unknown;
  /** The value had to be converted (or unwrapped from a related property) to fit the type. */
  converted: boolean;
  /** Path segments added while unwrapping (`value` of a QuantitativeValue, `name` of a Brand). */
  subpath: string[];
}

const ISO_YEAR_MONTH = /^(\d{4})-(\d{2})$/;

function ok(value: unknown, converted: boolean, subpath: string[] = []): Coerced {
  return { value, converted, subpath };
}

/** The value found, if the declared type's own check passes it: never a NUL character, an
 * integer past PostgreSQL's range or a jsonb number that is not finite. */
function storable(coerced: Coerced | undefined, context: CoerceContext): Coerced | undefined {
  return coerced && checkOutputValue(context.type, coerced.value).ok ? coerced : undefined;
}

function fromConversion(type: OutputType, value: unknown): Coerced | undefined {
  const result = convertOutputValue(type, value);
  return result.ok ? ok(result.value, result.converted) : undefined;
}

function coerce(
  raw: unknown,
  context: CoerceContext,
  ids: Map<string, Record<string, unknown>>,
): Coerced | undefined {
  const value = resolveRef(raw, ids);
  if (value === undefined || value === null) return undefined;
  if (context.type === "jsonb") return ok(value, false);

  if (Array.isArray(value)) {
    if (context.type === "text[]") return textArray(value, context, ids);
    if (value.length === 1) return coerce(value[0], context, ids);
    if (context.type === "text") {
      const parts = value.map((v) => coerce(v, { ...context, type: "text" }, ids));
      if (parts.length === 0 || parts.some((p) => !p)) return undefined;
      return ok(parts.map((p) => p!.value as string).join(", "), true);
    }
    return undefined; // several values for one scalar column: not exact
  }

  if (isRecord(value)) return unwrapObject(value, context, ids);

  switch (context.type) {
    case "text":
      return toText(value, context);
    case "text[]": {
      const text = toText(value, context);
      return text ? ok([text.value], true) : undefined;
    }
    case "integer":
      return toInteger(value, context);
    case "numeric":
      return toNumeric(value);
    case "boolean":
      return toBoolean(value);
    case "date":
      return toDate(value);
    case "timestamptz":
      return toTimestamp(value);
    default:
      return undefined;
  }
}

/** Objects stand for a value through well-known schema.org shapes, and only those. */
function unwrapObject(
  value: Record<string, unknown>,
  context: CoerceContext,
  ids: Map<string, Record<string, unknown>>,
): Coerced | undefined {
  const types = typesOf(value["@type"]);
  const via = (key: string, converted: boolean): Coerced | undefined => {
    if (!Object.hasOwn(value, key)) return undefined;
    const inner = coerce(value[key], context, ids);
    if (!inner) return undefined;
    return ok(inner.value, inner.converted || converted, [key, ...inner.subpath]);
  };
  // JSON-LD value objects: {"@value": "1998", "@type": "xsd:gYear"}.
  if (Object.hasOwn(value, "@value")) return via("@value", false);

  const numericLike = context.type === "integer" || context.type === "numeric";
  if (
    types.includes("QuantitativeValue") ||
    types.includes("MonetaryAmount") ||
    "minValue" in value
  ) {
    if (Object.hasOwn(value, "value")) return via("value", false);
    const min = value.minValue;
    const max = value.maxValue;
    if (min !== undefined && min === max) return via("minValue", true);
    if (context.type === "text" && min !== undefined && max !== undefined) {
      const low = toText(min, context);
      const high = toText(max, context);
      if (low && high)
        return ok(`${low.value as string}–${high.value as string}`, true, ["minValue"]);
    }
    return undefined; // a range or a bound is not one number
  }
  if (numericLike) return undefined;

  if (context.type === "text" || context.type === "text[]") {
    if (types.includes("PostalAddress") || "addressLocality" in value || "streetAddress" in value) {
      const text = formatAddress(value);
      if (!text) return undefined;
      return ok(context.type === "text[]" ? [text] : text, true);
    }
    if (types.includes("ImageObject") && typeof (value.url ?? value.contentUrl) === "string") {
      return via(value.url !== undefined ? "url" : "contentUrl", true);
    }
    if (Object.hasOwn(value, "name")) return via("name", true);
  }
  return undefined;
}

function formatAddress(address: Record<string, unknown>): string | undefined {
  const text = (key: string): string => {
    const v = address[key];
    if (typeof v === "string" || typeof v === "number") return String(v).trim();
    if (isRecord(v) && typeof v.name === "string") return v.name.trim();
    return "";
  };
  const locality = [text("postalCode"), text("addressLocality")].filter(Boolean).join(" ");
  const parts = [text("streetAddress"), locality, text("addressRegion"), text("addressCountry")];
  const joined = parts.filter(Boolean).join(", ");
  return joined === "" ? undefined : joined;
}

function textArray(
  values: unknown[],
  context: CoerceContext,
  ids: Map<string, Record<string, unknown>>,
): Coerced | undefined {
  const out: string[] = [];
  let converted = false;
  for (const element of values) {
    const text = coerce(element, { ...context, type: "text" }, ids);
    if (!text) return undefined;
    converted ||= text.converted;
    out.push(text.value as string);
  }
  return out.length > 0 ? ok(out, converted) : undefined;
}

function toText(value: unknown, context: CoerceContext): Coerced | undefined {
  if (typeof value === "string") {
    const trimmed = value.replace(/\s+/g, " ").trim();
    if (trimmed === "") return undefined;
    if (context.scheme && context.scheme.test(trimmed)) {
      const stripped = trimmed.replace(context.scheme, "").trim();
      return stripped === "" ? undefined : ok(decodeURIComponentSafe(stripped), true);
    }
    return ok(trimmed, false);
  }
  if (typeof value === "number" && Number.isFinite(value)) return ok(String(value), true);
  if (typeof value === "boolean") return ok(String(value), true);
  return undefined;
}

function decodeURIComponentSafe(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

function toInteger(value: unknown, context: CoerceContext): Coerced | undefined {
  // "120" and "120.0", never "120.5"; within PostgreSQL integer range.
  const exact = fromConversion("integer", value);
  if (exact || !context.year || typeof value !== "string") return exact;
  const text = value.trim();
  const date = isIsoDate(text) ? text : dateOfIsoTimestamp(text);
  if (date) return ok(Number(date.slice(0, 4)), true);
  const yearMonth = ISO_YEAR_MONTH.exec(text);
  if (yearMonth && isIsoDate(`${yearMonth[1]}-${yearMonth[2]}-01`))
    return ok(Number(yearMonth[1]), true);
  return undefined;
}

function toNumeric(value: unknown): Coerced | undefined {
  return fromConversion("numeric", value);
}

function toBoolean(value: unknown): Coerced | undefined {
  // schema.org writes booleans as `https://schema.org/True`.
  return fromConversion("boolean", typeof value === "string" ? localTypeName(value) : value);
}

function toDate(value: unknown): Coerced | undefined {
  if (typeof value !== "string") return undefined;
  const text = value.trim();
  if (isIsoDate(text)) return ok(text, false);
  // The calendar date written in an ISO date-time, as written (no time-zone shift).
  const fromDateTime = dateOfIsoTimestamp(text);
  return fromDateTime ? ok(fromDateTime, true) : undefined;
}

function toTimestamp(value: unknown): Coerced | undefined {
  // Without an offset the instant is ambiguous: refused, as in an LLM's answer.
  return typeof value === "string" ? fromConversion("timestamptz", value.trim()) : undefined;
}
