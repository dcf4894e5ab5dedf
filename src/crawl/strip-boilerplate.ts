import type { DomElement, DomNode } from "./extract-dom.ts";

/**
 * A page without an article (a company's home or about page, a directory) keeps its visible text
 * minus the boilerplate around it: navigation, cookie and consent banners, share buttons, lists of
 * related articles, newsletter and ad boxes, skip links. Removed in place from `root` (the body
 * the Markdown is written from; links were read before).
 *
 * Page chrome (header, footer, sidebar) is not dropped whole: a company's address, phone,
 * registration number or founding year often sits in its footer. Inside it only link-dense
 * blocks go (menus, link columns, "follow us" rows); mailto: and tel: links count as text.
 *
 * One walk measures every element (characters, link characters, words, cookie words), a second
 * one decides top-down, so the outermost boilerplate element goes and nothing is measured twice.
 * A rule that reads class names never removes more than half of the page's text (a site that calls
 * its main column "sidebar" keeps it); a cookie banner goes whatever its size, but a cookie
 * policy page keeps its text.
 */

interface WalkNode extends DomNode {
  readonly childNodes: ArrayLike<WalkNode>;
}

interface Stats {
  chars: number;
  /** Characters inside links other than mailto: and tel:. */
  linkChars: number;
  words: number;
  /** Words about cookies and consent: cookie, consent, GDPR, tracking, partners… */
  cookieWords: number;
}

const TEXT_NODE = 3;
const ELEMENT_NODE = 1;
const INVISIBLE = new Set(["script", "style", "noscript", "template", "svg", "head"]);

/** Elements whose links are words of a sentence, not a menu. */
const TEXT_BLOCKS = new Set([
  "p",
  "address",
  "span",
  "strong",
  "b",
  "em",
  "i",
  "small",
  "td",
  "dd",
]);
const NAVIGATION_ROLES = new Set(["navigation", "menubar", "menu", "search", "tablist"]);
const CHROME_TAGS = new Set(["header", "footer", "aside"]);
const CHROME_ROLES = new Set(["banner", "contentinfo", "complementary"]);

/** Class, id, role or label words, as written in class names (`c-cookie-banner`, `cookieBar`). */
const CONSENT_NAMES =
  /consent|gdpr|onetrust|didomi|cookiebot|usercentrics|truste|cmp-|cc-(?:window|banner)|cookie-?(?:banner|bar|notice|consent|popup|modal|law|wall|box|message|alert)/i;
/** Alone, "cookie" in a class name may be a bakery's product card. */
const COOKIE_NAMES = /cookie/i;
/** Where a banner lives; a paragraph of a cookie policy is never one. */
const BANNER_TAGS = new Set(["div", "section", "aside", "dialog", "form", "footer", "header"]);
const CONSENT_CONTROL =
  /^(?:accept|agree|allow|reject|decline|refuse|ok|okay|got it|i understand|manage|settings|preferences|customi[sz]e|close)\b/i;
const SHARE_NAMES = /(?:^|[\s_-])(?:share|sharing|social|addthis|sharethis|shariff)/i;
const RELATED_NAMES =
  /related|recommend|more-stories|read-?next|most-?read|most-?popular|trending|outbrain|taboola|you-may-like/i;
const PROMO_NAMES =
  /(?:^|[\s_-])(?:newsletter|subscribe|signup|sign-up|advert|advertisement|ads?|sponsor(?:ed)?|promo)(?:[\s_-]|$)/i;
const NAV_NAMES =
  /(?:^|[\s_-])(?:nav|navbar|navigation|menu|breadcrumbs?|pagination|pager|skip-?links?)(?:[\s_-]|$)/i;
const CHROME_NAMES =
  /(?:^|[\s_-])(?:header|footer|masthead|sidebar|site-?info|colophon)(?:[\s_-]|$)/i;

/** How a cookie banner asks: accept, reject, manage, consent… */
const CONSENT_TEXT =
  /\b(?:accept|allow|reject|decline|refuse|manage|customi[sz]e)\b[^.]{0,40}\b(?:cookies?|all|preferences|settings|choices)\b|\bconsent\b|\bcookie (?:policy|settings|preferences|notice|statement)\b|\b(?:we|this (?:web)?site|our (?:web)?site) uses? cookies\b/i;
const COOKIE_WORDS =
  /\b(?:cookies?|consent|gdpr|tracking|trackers?|partners|personali[sz]ed|advertising|preferences)\b/gi;
const RELATED_HEADING =
  /^(?:related|more (?:from|on|about|stories|news|articles)|most (?:read|popular|viewed)|you (?:may|might) (?:also )?like|read (?:more|next)|recommended|trending|popular|see also|further reading)\b/i;
const SKIP_LINK = /^skip to\b/i;

export function stripBoilerplate(root: DomElement): void {
  const stats = new Map<DomElement, Stats>();
  const total = measure(root as unknown as WalkNode, stats, false);
  strip(root, stats, total.chars, false);
}

function measure(node: WalkNode, stats: Map<DomElement, Stats>, inLink: boolean): Stats {
  if (node.nodeType === TEXT_NODE) {
    const text = node.textContent ?? "";
    const chars = text.replace(/\s+/g, "").length;
    return {
      chars,
      linkChars: inLink ? chars : 0,
      words: chars === 0 ? 0 : (text.match(/[\p{L}\p{N}]+/gu)?.length ?? 0),
      cookieWords: chars === 0 ? 0 : (text.match(COOKIE_WORDS)?.length ?? 0),
    };
  }
  const sum: Stats = { chars: 0, linkChars: 0, words: 0, cookieWords: 0 };
  if (node.nodeType !== ELEMENT_NODE) return sum;
  const element = node as unknown as DomElement & WalkNode;
  if (INVISIBLE.has(element.localName)) return sum;
  const link =
    inLink ||
    (element.localName === "a" &&
      !/^\s*(?:mailto|tel):/i.test(element.getAttribute("href") ?? "mailto:"));
  const children = node.childNodes;
  for (let i = 0; i < children.length; i++) {
    const child = measure(children[i]!, stats, link);
    sum.chars += child.chars;
    sum.linkChars += child.linkChars;
    sum.words += child.words;
    sum.cookieWords += child.cookieWords;
  }
  stats.set(element, sum);
  return sum;
}

function strip(
  element: DomElement,
  stats: Map<DomElement, Stats>,
  pageChars: number,
  inChrome: boolean,
): void {
  // A copy: removing a child must not skip its next sibling.
  const children = Array.from(element.children);
  for (let i = 0; i < children.length; i++) {
    const child = children[i]!;
    const s = stats.get(child);
    if (!s) continue;
    const verdict = judge(child, s, pageChars, inChrome, element.localName);
    if (verdict === "remove") {
      child.remove();
      continue;
    }
    if (verdict === "keep" && isRelatedHeading(child)) {
      const next = children[i + 1];
      const nextStats = next ? stats.get(next) : undefined;
      if (next && nextStats && linkDensity(nextStats) > 0.5) {
        child.remove();
        next.remove();
        i++;
        continue;
      }
    }
    strip(child, stats, pageChars, inChrome || verdict === "chrome");
  }
}

type Verdict = "remove" | "chrome" | "keep";

function judge(
  element: DomElement,
  s: Stats,
  pageChars: number,
  inChrome: boolean,
  parentTag: string,
): Verdict {
  const tag = element.localName;
  const role = (element.getAttribute("role") ?? "").toLowerCase();
  const names = `${element.getAttribute("id") ?? ""} ${element.getAttribute("class") ?? ""} ${element.getAttribute("aria-label") ?? ""}`;
  const density = linkDensity(s);
  const small = s.chars <= pageChars / 2;

  if (tag === "nav" || NAVIGATION_ROLES.has(role)) {
    // A nav wrapped around prose (it happens) is not navigation.
    if (density > 0.3 || s.chars < 100) return "remove";
  }
  if (tag === "a" && SKIP_LINK.test((element.textContent ?? "").trim())) return "remove";
  // A banner can outweigh a small page's text: no share of the page protects the page from it.
  if (isCookieBanner(element, s, names)) return "remove";
  if (small && SHARE_NAMES.test(names) && (s.chars < 300 || density > 0.5)) return "remove";
  if (small && RELATED_NAMES.test(names) && (s.chars < 200 || density > 0.3)) return "remove";
  if (small && PROMO_NAMES.test(names) && s.chars < 500) return "remove";
  if (small && NAV_NAMES.test(names) && density > 0.5) return "remove";
  // Inside a header, footer or sidebar: menus and link columns go, the facts stay.
  // A link inside a sentence ("part of <a>Acme Group</a>") is part of that sentence.
  if (inChrome && s.chars > 0 && density > 0.5 && (tag !== "a" || !TEXT_BLOCKS.has(parentTag))) {
    return "remove";
  }
  if (CHROME_TAGS.has(tag) || CHROME_ROLES.has(role) || (small && CHROME_NAMES.test(names))) {
    return "chrome";
  }
  return "keep";
}

/**
 * A cookie or consent banner; never what holds the page's h1 or is its main or article (a cookie
 * policy page that embeds the consent buttons keeps its text).
 */
function isCookieBanner(element: DomElement, s: Stats, names: string): boolean {
  const tag = element.localName;
  if (tag === "main" || tag === "article" || tag === "body") return false;
  let banner: boolean;
  if (CONSENT_NAMES.test(names)) banner = true;
  else if (s.cookieWords === 0) banner = false;
  else if (COOKIE_NAMES.test(names)) {
    banner = CONSENT_TEXT.test(element.textContent ?? "") || hasConsentControl(element);
  } else {
    // No telling name: a box whose words are mostly about cookies, asking for a choice.
    banner =
      BANNER_TAGS.has(tag) &&
      s.cookieWords >= 2 &&
      s.cookieWords / Math.max(s.words, 1) >= 0.03 &&
      CONSENT_TEXT.test(element.textContent ?? "") &&
      hasConsentControl(element);
  }
  return banner && element.querySelector("h1") === null;
}

/** A button, or a link or control labelled accept, reject, manage… */
function hasConsentControl(element: DomElement): boolean {
  if (element.querySelector("button, input, select, [role=button]")) return true;
  const links = element.querySelectorAll("a");
  for (let i = 0; i < links.length; i++) {
    if (CONSENT_CONTROL.test((links[i]!.textContent ?? "").trim())) return true;
  }
  return false;
}

function isRelatedHeading(element: DomElement): boolean {
  if (!/^h[2-6]$/.test(element.localName)) return false;
  return RELATED_HEADING.test((element.textContent ?? "").trim());
}

function linkDensity(s: Stats): number {
  return s.chars === 0 ? 0 : s.linkChars / s.chars;
}
