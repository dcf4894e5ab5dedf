import { Parser } from "htmlparser2";

/**
 * Whether a fetched page must be rendered in the browser (`javascript: always | never | auto`).
 * A browser render costs a hundred times a fetch, so `auto` renders only pages whose fetched
 * HTML shows signs that a script writes what the reader would see: thin visible text, an SPA
 * shell (an app root with little text in it), and, on pages that otherwise have ordinary static
 * text, the marks of facts filled in after load: inline scripts that target empty containers by
 * id, empty inline fields (`Employees: <span id="employees"></span>`), unrendered template
 * placeholders (`{{ founded }}`), a `<noscript>` asking for JavaScript beside empty containers,
 * and little text beside a lot of inline script. Ordinary static pages with analytics scripts
 * show none of these and stay on the fetch path.
 */

export type JavascriptMode = "always" | "never" | "auto";

export interface FetchedForDecision {
  html: string;
  /** The media type; anything but HTML is never rendered in `auto`. */
  contentType?: string;
  /** Visible text length when the caller already knows it (saves a parse). */
  textLength?: number;
}

export interface BrowserDecision {
  render: boolean;
  reason: string;
}

/** Fewer visible characters than this is thin. */
export const THIN_TEXT_CHARS = 200;

/** Below this many visible characters, inline scripts this many times larger are the page. */
const SCRIPT_HEAVY_TEXT_CHARS = 1_000;
const SCRIPT_HEAVY_RATIO = 10;

export interface HtmlShape {
  /** Visible characters, whitespace runs counted as one; scripts, styles, head… excluded. */
  textLength: number;
  scripts: number;
  /** `<script src>` and `<script type="module">`: what a bundler emits. */
  bundles: number;
  /** Characters of inline executable scripts. */
  inlineScriptChars: number;
  /** Found an app root (`#root`, `#app`, `#__next`, `[data-reactroot]`, `<app-root>`, `[ng-app]`…). */
  appRoot: boolean;
  /** Visible characters inside the first app root. */
  appRootTextLength: number;
  /** A <noscript> asking for JavaScript. */
  noscriptAsksForJs: boolean;
  /** Ids of visible elements with no text, minus widgets (cookie banners, ads, chat…). */
  emptyContainerIds: string[];
  /** Of those, inline elements inside text (span, dd, td, strong…): a field left blank. */
  emptyFieldIds: string[];
  /** Ids that inline scripts which write into the page look up (`getElementById("x")`, `querySelector("#x")`, `$("#x")`). */
  scriptTargetIds: string[];
  /** Visible `{{ … }}` placeholders a client-side template has not filled. */
  templatePlaceholders: number;
}

const HIDDEN = new Set(["script", "style", "noscript", "template", "svg", "head", "title"]);
const ROOT_IDS =
  /^(root|app|__next|__nuxt|___gatsby|svelte|app-root|main-app|react-root|application)$/i;
const ROOT_ATTRIBUTES = ["data-reactroot", "ng-app", "ng-version", "data-server-rendered"];
const EXECUTABLE_TYPES = /^(|text\/javascript|application\/javascript|module)$/i;
/** Elements that hold text; an empty one with an id is a container a script may fill. */
const CONTAINERS = new Set([
  "div",
  "section",
  "main",
  "article",
  "p",
  "ul",
  "ol",
  "table",
  "tbody",
  "dl",
  "h1",
  "h2",
  "h3",
  "h4",
  "h5",
  "h6",
]);
/** Inline elements that hold a value: empty after a label (`Founded:`), a blank a script fills. */
const FIELDS = new Set(["span", "dd", "td", "strong", "b", "em", "output", "data", "time"]);
/** Cells of a definition list or table are labelled by their row, not by a colon. */
const LABELLED_BY_ROW = new Set(["dd", "td"]);
/**
 * Script-filled facts matter on short pages (company home and about pages, a few thousand
 * characters); a long article with an empty widget has its text already.
 */
const FILLED_FACTS_MAX_TEXT_CHARS = 5_000;
/** Empty widgets every static site has, filled by third-party scripts with no facts in them. */
const WIDGET_IDS = new RegExp(
  "(^|[-_])(" +
    [
      "fb-root|fb|disqus|cookies?|consent|gdpr|ccpa|ads?|adslot|advert\\w*|dfp|mpu\\d*|sponsor\\w*",
      "banner|modal|overlay|popup|toast|chat|tracking|analytics|gtm|pixel|(re)?captcha",
      "spinner|loader|loading|lightbox|tooltip|notifications?|alert|skip|search\\w*|menu|nav\\w*",
      "newsletter|optin|subscribe|login|social|share\\w*|comments?|player|video|map",
      "errors?|error-?msg|msg|messages?|status",
    ].join("|") +
    ")($|[-_\\d])",
  "i",
);
const NOSCRIPT_ASKS = /enable javascript|requires javascript|javascript (is )?(required|disabled)/i;
/** What an inline script does to write into the page. */
const SCRIPT_WRITES =
  /\.(innerHTML|textContent|innerText)\s*=|\.(append|appendChild|replaceChildren|insertAdjacentHTML|insertAdjacentText|html|text)\(/;
const SCRIPT_TARGETS = [
  /getElementById\(\s*["'`]([\w:.-]+)["'`]\s*\)/g,
  /querySelector(?:All)?\(\s*["'`]#([\w-]+)["'`]\s*\)/g,
  /\$\(\s*["'`]#([\w-]+)["'`]\s*\)/g,
];
const PLACEHOLDER = /\{\{[^{}]{1,80}\}\}/g;

interface OpenElement {
  name: string;
  id: string | undefined;
  textAtOpen: number;
  hidden: boolean;
  /** The visible text just before the element ends with a colon: a label. */
  afterLabel: boolean;
}

export function htmlShape(html: string): HtmlShape {
  const shape: HtmlShape = {
    textLength: 0,
    scripts: 0,
    bundles: 0,
    inlineScriptChars: 0,
    appRoot: false,
    appRootTextLength: 0,
    noscriptAsksForJs: false,
    emptyContainerIds: [],
    emptyFieldIds: [],
    scriptTargetIds: [],
    templatePlaceholders: 0,
  };
  const targets = new Set<string>();
  const open: OpenElement[] = [];
  let hiddenDepth = 0;
  let inNoscript = false;
  let inlineScript: string[] | undefined;
  // Open elements inside the app root, so its end is known; -1 when not inside it.
  let rootDepth = -1;
  let lastWasSpace = true;
  let lastText = "";
  const count = (text: string) => {
    let n = 0;
    for (const ch of text) {
      const space = /\s/.test(ch);
      if (space && lastWasSpace) continue;
      lastWasSpace = space;
      n++;
    }
    return n;
  };
  const closeElement = (element: OpenElement) => {
    if (element.hidden && hiddenDepth > 0) hiddenDepth--;
    if (rootDepth > 0) rootDepth--;
    if (rootDepth === 0) rootDepth = -2; // the first root ended; look for no other
    if (hiddenDepth > 0 || element.id === undefined || element.textAtOpen !== shape.textLength) {
      return;
    }
    if (WIDGET_IDS.test(element.id)) return;
    if (CONTAINERS.has(element.name)) shape.emptyContainerIds.push(element.id);
    else if (
      FIELDS.has(element.name) &&
      (element.afterLabel || LABELLED_BY_ROW.has(element.name))
    ) {
      shape.emptyContainerIds.push(element.id);
      shape.emptyFieldIds.push(element.id);
    }
  };
  const parser = new Parser(
    {
      onopentag(name, attributes) {
        if (name === "script") {
          const type = (attributes.type ?? "").trim();
          if (EXECUTABLE_TYPES.test(type)) {
            shape.scripts++;
            if (attributes.src !== undefined || type.toLowerCase() === "module") shape.bundles++;
            if (attributes.src === undefined) inlineScript = [];
          }
        }
        if (name === "noscript") inNoscript = true;
        const hidden = HIDDEN.has(name) || attributes.hidden !== undefined;
        if (hidden) hiddenDepth++;
        if (rootDepth >= 0) rootDepth++;
        else if (!shape.appRoot && isAppRoot(name, attributes)) {
          shape.appRoot = true;
          rootDepth = 1;
        }
        const id = attributes.id?.trim();
        open.push({
          name,
          id: id === "" ? undefined : id,
          textAtOpen: shape.textLength,
          hidden,
          afterLabel: /:\s*$/.test(lastText),
        });
      },
      ontext(text) {
        if (inlineScript) inlineScript.push(text);
        if (inNoscript && NOSCRIPT_ASKS.test(text)) shape.noscriptAsksForJs = true;
        if (hiddenDepth > 0) return;
        const n = count(text);
        if (n > 0 && text.trim() !== "") lastText = text;
        shape.textLength += n;
        if (rootDepth > 0) shape.appRootTextLength += n;
        if (text.includes("{{")) shape.templatePlaceholders += text.match(PLACEHOLDER)?.length ?? 0;
      },
      onclosetag(name) {
        if (name === "noscript") inNoscript = false;
        if (name === "script" && inlineScript) {
          const source = inlineScript.join("");
          shape.inlineScriptChars += source.length;
          if (SCRIPT_WRITES.test(source))
            for (const pattern of SCRIPT_TARGETS) {
              for (const match of source.matchAll(pattern)) targets.add(match[1]!);
            }
          inlineScript = undefined;
        }
        // htmlparser2 closes implied elements itself; a stray end tag matches nothing open.
        const at = open.findLastIndex((element) => element.name === name);
        if (at < 0) return;
        while (open.length > at) closeElement(open.pop()!);
      },
    },
    {
      decodeEntities: true,
      lowerCaseTags: true,
      lowerCaseAttributeNames: true,
      recognizeSelfClosing: false,
    },
  );
  parser.write(html);
  parser.end();
  while (open.length > 0) closeElement(open.pop()!);
  shape.scriptTargetIds = [...targets];
  return shape;
}

function isAppRoot(name: string, attributes: Record<string, string>): boolean {
  if (name === "app-root") return true;
  if (name !== "div" && name !== "main" && name !== "section" && name !== "body") return false;
  if (attributes.id !== undefined && ROOT_IDS.test(attributes.id.trim())) return true;
  return name !== "body" && ROOT_ATTRIBUTES.some((a) => attributes[a] !== undefined);
}

export function decideBrowser(mode: JavascriptMode, fetched: FetchedForDecision): BrowserDecision {
  if (mode === "always") return { render: true, reason: "javascript: always" };
  if (mode === "never") return { render: false, reason: "javascript: never" };
  const type = fetched.contentType?.split(";")[0]?.trim().toLowerCase();
  if (
    type !== undefined &&
    type !== "" &&
    type !== "text/html" &&
    type !== "application/xhtml+xml"
  ) {
    return { render: false, reason: `${type} is not a page to render` };
  }
  const shape = htmlShape(fetched.html);
  const textLength = fetched.textLength ?? shape.textLength;
  if (shape.scripts === 0) {
    // Nothing would run: a browser would show the same text.
    return { render: false, reason: "no scripts" };
  }
  if (shape.appRoot && shape.bundles > 0 && shape.appRootTextLength < THIN_TEXT_CHARS) {
    return { render: true, reason: "SPA shell: an app root with little text, and script bundles" };
  }
  if (textLength < THIN_TEXT_CHARS) {
    return { render: true, reason: `thin text (${textLength} visible characters) and scripts` };
  }
  if (textLength >= FILLED_FACTS_MAX_TEXT_CHARS) {
    return { render: false, reason: `${textLength} visible characters without scripts running` };
  }
  const filled = shape.scriptTargetIds.find((id) => shape.emptyContainerIds.includes(id));
  if (filled !== undefined) {
    return { render: true, reason: `a script fills the empty #${filled}` };
  }
  if (shape.emptyFieldIds.length > 0) {
    return { render: true, reason: `an empty field #${shape.emptyFieldIds[0]} beside scripts` };
  }
  if (shape.templatePlaceholders > 0) {
    return { render: true, reason: "unfilled {{ }} template placeholders" };
  }
  if (
    shape.noscriptAsksForJs &&
    (textLength < 4 * THIN_TEXT_CHARS || shape.emptyContainerIds.length > 0)
  ) {
    return { render: true, reason: "the page asks for JavaScript" };
  }
  if (
    textLength < SCRIPT_HEAVY_TEXT_CHARS &&
    shape.inlineScriptChars > SCRIPT_HEAVY_RATIO * textLength
  ) {
    return {
      render: true,
      reason: `little text (${textLength} characters) beside ${shape.inlineScriptChars} characters of inline script`,
    };
  }
  return { render: false, reason: `${textLength} visible characters without scripts running` };
}

/** `decideBrowser(…).render`. */
export function needsBrowser(mode: JavascriptMode, fetched: FetchedForDecision): boolean {
  return decideBrowser(mode, fetched).render;
}
