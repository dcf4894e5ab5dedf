import { Parser } from "htmlparser2";

/**
 * Whether a fetched page must be rendered in the browser (`javascript: always | never | auto`).
 * A browser render costs a hundred times a fetch, so `auto` renders only pages whose fetched
 * HTML shows too little to read and has scripts that could fill it: thin visible text, or an SPA
 * shell (an app root with little text in it, and script bundles).
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

export interface HtmlShape {
  /** Visible characters, whitespace runs counted as one; scripts, styles, head… excluded. */
  textLength: number;
  scripts: number;
  /** `<script src>` and `<script type="module">`: what a bundler emits. */
  bundles: number;
  /** Found an app root (`#root`, `#app`, `#__next`, `[data-reactroot]`, `<app-root>`, `[ng-app]`…). */
  appRoot: boolean;
  /** Visible characters inside the first app root. */
  appRootTextLength: number;
  /** A <noscript> asking for JavaScript. */
  noscriptAsksForJs: boolean;
}

const HIDDEN = new Set(["script", "style", "noscript", "template", "svg", "head", "title"]);
const ROOT_IDS =
  /^(root|app|__next|__nuxt|___gatsby|svelte|app-root|main-app|react-root|application)$/i;
const ROOT_ATTRIBUTES = ["data-reactroot", "ng-app", "ng-version", "data-server-rendered"];
const EXECUTABLE_TYPES = /^(|text\/javascript|application\/javascript|module)$/i;

export function htmlShape(html: string): HtmlShape {
  const shape: HtmlShape = {
    textLength: 0,
    scripts: 0,
    bundles: 0,
    appRoot: false,
    appRootTextLength: 0,
    noscriptAsksForJs: false,
  };
  let hiddenDepth = 0;
  let inNoscript = false;
  // Open elements inside the app root, so its end is known; -1 when not inside it.
  let rootDepth = -1;
  let lastWasSpace = true;
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
  const parser = new Parser(
    {
      onopentag(name, attributes) {
        if (name === "script") {
          const type = (attributes.type ?? "").trim();
          if (EXECUTABLE_TYPES.test(type)) {
            shape.scripts++;
            if (attributes.src !== undefined || type.toLowerCase() === "module") shape.bundles++;
          }
        }
        if (name === "noscript") inNoscript = true;
        if (HIDDEN.has(name)) hiddenDepth++;
        if (rootDepth >= 0) rootDepth++;
        else if (!shape.appRoot && isAppRoot(name, attributes)) {
          shape.appRoot = true;
          rootDepth = 1;
        }
      },
      ontext(text) {
        if (
          inNoscript &&
          /enable javascript|requires javascript|javascript (is )?(required|disabled)/i.test(text)
        ) {
          shape.noscriptAsksForJs = true;
        }
        if (hiddenDepth > 0) return;
        const n = count(text);
        shape.textLength += n;
        if (rootDepth > 0) shape.appRootTextLength += n;
      },
      onclosetag(name) {
        if (name === "noscript") inNoscript = false;
        if (HIDDEN.has(name) && hiddenDepth > 0) hiddenDepth--;
        if (rootDepth > 0) rootDepth--;
        if (rootDepth === 0) rootDepth = -2; // the first root ended; look for no other
      },
    },
    { decodeEntities: true, lowerCaseTags: true, lowerCaseAttributeNames: true },
  );
  parser.write(html);
  parser.end();
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
  if (shape.noscriptAsksForJs && textLength < 4 * THIN_TEXT_CHARS) {
    return { render: true, reason: "the page asks for JavaScript" };
  }
  return { render: false, reason: `${textLength} visible characters without scripts running` };
}

/** `decideBrowser(…).render`. */
export function needsBrowser(mode: JavascriptMode, fetched: FetchedForDecision): boolean {
  return decideBrowser(mode, fetched).render;
}
