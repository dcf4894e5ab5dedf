// Checks demo/truth.json against the generated pages with Gleaner's own extraction code:
// - structured data (extractPageContent + valuesFromStructuredData) on every index/about page
//   recovers the truth exactly where truth says json-ld/microdata, and never disagrees with it;
// - every page named in `urls` holds the value (text, structured data, or after its script ran);
// - no other page of the organisation's own site holds it (the lists are complete);
// - decoy pages name the organisation with a wrong value only;
// - only the JavaScript about pages need the browser.
//
//   node --import tsx demo/check-demo-data.ts
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, sep } from "node:path";
import { fileURLToPath } from "node:url";
import vm from "node:vm";
import { parseHTML } from "linkedom";
import { decideBrowser } from "../src/crawl/browser-decision.ts";
import { extractPageContent } from "../src/crawl/page-content.ts";
import {
  valuesFromStructuredData,
  type StructuredValues,
} from "../src/crawl/extract-structured-values.ts";

const DEMO_DIR = dirname(fileURLToPath(import.meta.url));
const CORPUS_DIR = join(DEMO_DIR, "corpus");
const BASE_URL = "http://127.0.0.1:9464/demo/corpus/";

const COLUMNS = ["industry", "founded", "employees", "city", "country"] as const;
type Column = (typeof COLUMNS)[number];
const OUTPUTS = [
  { name: "industry", type: "text" },
  { name: "founded", type: "integer" },
  { name: "employees", type: "integer" },
  { name: "city", type: "text" },
  { name: "country", type: "text" },
] as const;

type Value = string | number | null;
interface TruthEntry {
  value: Value;
  urls: string[];
  where: string;
  decoys?: string[];
}
type Truth = Record<string, Record<Column, TruthEntry>>;

interface Page {
  path: string;
  bytes: number;
  /** The Markdown the extract stage would read (after the script ran, for pages that render). */
  markdown: string;
  staticMarkdown: string;
  values: StructuredValues;
  render: boolean;
}

const errors: string[] = [];
const fail = (message: string) => errors.push(message);

function listFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => relative(dir, join(e.parentPath, e.name)).split(sep).join("/"))
    .sort();
}

/** The little of linkedom's DOM that running the demo's inline scripts needs. */
interface ScriptDocument {
  querySelectorAll(selectors: string): ArrayLike<{
    textContent: string | null;
    getAttribute(name: string): string | null;
    hasAttribute(name: string): boolean;
  }>;
  toString(): string;
}

/** The page's HTML once its inline scripts have run against linkedom's DOM. */
function renderScripts(html: string): string {
  // linkedom's typings name the DOM lib's types, which this project does not load.
  const { document } = parseHTML(html) as unknown as { document: ScriptDocument };
  for (const script of Array.from(document.querySelectorAll("script"))) {
    const type = (script.getAttribute("type") ?? "").toLowerCase();
    if (script.hasAttribute("src") || !["", "module", "text/javascript"].includes(type)) continue;
    vm.runInNewContext(script.textContent ?? "", { document });
  }
  return document.toString();
}

const pages = new Map<string, Page>();
for (const path of listFiles(CORPUS_DIR)) {
  const html = readFileSync(join(CORPUS_DIR, path), "utf8");
  const url = BASE_URL + path;
  const content = extractPageContent(html, url);
  const render = decideBrowser("auto", { html, contentType: "text/html" }).render;
  const markdown = render
    ? extractPageContent(renderScripts(html), url).markdown
    : content.markdown;
  pages.set(path, {
    path,
    bytes: Buffer.byteLength(html),
    markdown,
    staticMarkdown: content.markdown,
    values: valuesFromStructuredData(content.structured, OUTPUTS),
    render,
  });
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

function textHolds(markdown: string, column: Column, value: Value): boolean {
  if (value === null) return false;
  if (column === "founded" || column === "employees") {
    const n = Number(value);
    return [String(n), n.toLocaleString("en-US")].some((form) =>
      // Not part of a larger number or of a date (2023-03-14, 6 June 1995).
      new RegExp(
        `(?<![\\d.,-])${escapeRegExp(form)}(?![\\d-]|[.,]\\d| (January|February|March|April|May|June|July|August|September|October|November|December))`,
      ).test(markdown),
    );
  }
  const text = column === "industry" ? String(value).toLowerCase() : String(value);
  const haystack = column === "industry" ? markdown.toLowerCase() : markdown;
  return new RegExp(`(?<![\\p{L}\\p{N}])${escapeRegExp(text)}(?![\\p{L}\\p{N}])`, "u").test(
    haystack,
  );
}

function pageHolds(page: Page, column: Column, value: Value): boolean {
  return page.values[column]?.value === value || textHolds(page.markdown, column, value);
}

const truth = JSON.parse(readFileSync(join(DEMO_DIR, "truth.json"), "utf8")) as Truth;
const csvLines = readFileSync(join(DEMO_DIR, "organisations.csv"), "utf8").trimEnd().split("\n");
if (csvLines[0] !== "name,domain") fail(`organisations.csv header: ${csvLines[0]}`);
const csvDomains = csvLines.slice(1).map((line) => line.slice(line.lastIndexOf(",") + 1));
const domains = Object.keys(truth);
if (csvDomains.join() !== domains.join())
  fail("organisations.csv and truth.json list different domains");
if (new Set(csvLines).size !== csvLines.length) fail("organisations.csv has duplicate rows");
for (const d of domains) if (!d.endsWith(".example")) fail(`${d}: not a .example domain`);

// 1. Structured data on index/about pages.
const recovered: Record<Column, number> = {
  industry: 0,
  founded: 0,
  employees: 0,
  city: 0,
  country: 0,
};
const expected: Record<Column, number> = { ...recovered };
const mismatches: string[] = [];
for (const domain of domains) {
  for (const column of COLUMNS) {
    const entry = truth[domain]![column];
    const structuredWhere = entry.where === "json-ld" || entry.where === "microdata";
    if (structuredWhere) expected[column]++;
    let got = false;
    for (const file of ["index.html", "about.html"]) {
      const found = pages.get(`${domain}/${file}`)?.values[column];
      if (!found) continue;
      if (found.value === entry.value) got = true;
      else
        mismatches.push(
          `${domain}/${file} ${column}: structured ${JSON.stringify(found.value)}, truth ${JSON.stringify(entry.value)}`,
        );
    }
    if (got) recovered[column]++;
    if (structuredWhere && !got)
      fail(`${domain} ${column}: truth says ${entry.where}, structured data recovers nothing`);
    if (got && !structuredWhere)
      fail(`${domain} ${column}: structured data recovers it, truth says ${entry.where}`);
  }
}
errors.push(...mismatches);

// 2–4. Evidence pages, completeness on the organisation's own site, decoys.
const decoyNames = new Map<string, string>();
for (const line of csvLines.slice(1)) {
  const comma = line.lastIndexOf(",");
  decoyNames.set(
    line.slice(comma + 1),
    line.slice(0, comma).replace(/^"|"$/g, "").replace(/""/g, '"'),
  );
}
for (const domain of domains) {
  const ownPages = [...pages.keys()].filter((p) => p.startsWith(`${domain}/`));
  for (const column of COLUMNS) {
    const entry = truth[domain]![column];
    if ((entry.value === null) !== (entry.urls.length === 0))
      fail(`${domain} ${column}: value/urls disagree`);
    for (const url of entry.urls) {
      const page = pages.get(url);
      if (!page) fail(`${domain} ${column}: ${url} does not exist`);
      else if (!pageHolds(page, column, entry.value))
        fail(`${domain} ${column}: ${url} does not hold ${JSON.stringify(entry.value)}`);
    }
    for (const path of ownPages) {
      if (entry.urls.includes(path)) continue;
      if (pageHolds(pages.get(path)!, column, entry.value))
        fail(
          `${domain} ${column}: ${path} holds ${JSON.stringify(entry.value)} but is not in urls`,
        );
    }
    for (const url of entry.decoys ?? []) {
      const page = pages.get(url);
      const name = decoyNames.get(domain)!;
      if (!page) fail(`${domain} decoy ${url} does not exist`);
      else if (!page.markdown.includes(name)) fail(`${domain} decoy ${url} does not name ${name}`);
      else if (entry.value !== null && textHolds(page.markdown, column, entry.value))
        fail(`${domain} decoy ${url} holds the true ${column}`);
    }
  }
}

// 5. Browser path: only JavaScript about pages render, and their facts are not in the static text.
let rendered = 0;
for (const page of pages.values()) {
  const domain = page.path.split("/")[0]!;
  const isJsAbout =
    page.path.endsWith("/about.html") && truth[domain]?.founded.where === "javascript";
  if (page.render !== isJsAbout) fail(`${page.path}: browser decision ${page.render}`);
  if (page.render) rendered++;
  if (isJsAbout) {
    for (const column of ["founded", "employees", "city"] as const) {
      if (textHolds(page.staticMarkdown, column, truth[domain]![column].value))
        fail(`${page.path}: ${column} readable without the browser`);
    }
  }
}

// Report.
const sizes = [...pages.values()].map((p) => p.bytes);
const total = sizes.reduce((a, b) => a + b, 0);
console.log(
  `pages: ${pages.size}, ${(total / 1024).toFixed(0)} KB, ${Math.min(...sizes)}–${Math.max(...sizes)} bytes each; ${rendered} need the browser`,
);
const outside = [...pages.values()].filter((p) => p.bytes < 900 || p.bytes > 4300);
if (outside.length > 0)
  console.log(`pages outside ~1–4 KB: ${outside.map((p) => `${p.path} (${p.bytes})`).join(", ")}`);
console.log("structured data (index.html + about.html) recovers the truth exactly:");
for (const column of COLUMNS) {
  console.log(
    `  ${column.padEnd(9)} ${String(recovered[column]).padStart(3)} of ${expected[column]} expected (truth where json-ld/microdata), ${domains.length} organisations`,
  );
}
console.log(`mismatches: ${mismatches.length}`);
if (errors.length > 0) {
  console.log(`${errors.length} problem(s):`);
  for (const e of errors.slice(0, 60)) console.log(`  ${e}`);
  process.exitCode = 1;
} else {
  console.log("truth.json agrees with every page");
}
