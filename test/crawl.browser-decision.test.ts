import { describe, expect, it } from "vitest";
import {
  decideBrowser,
  htmlShape,
  needsBrowser,
  THIN_TEXT_CHARS,
} from "../src/crawl/browser-decision.ts";
import { htmlPage, jsItemText, jsShellHtml } from "./support/fixture-site.ts";

/** `javascript: always | never | auto`: auto renders thin pages with scripts and SPA shells. */

const words = (n: number) => "word ".repeat(Math.ceil(n / 5)).slice(0, n);
const article = htmlPage("Article", `<article><p>${words(1_000)}</p></article>`);

describe("needsBrowser", () => {
  it("obeys always and never whatever the page", () => {
    expect(needsBrowser("always", { html: article })).toBe(true);
    expect(needsBrowser("never", { html: jsShellHtml(1) })).toBe(false);
  });

  it("auto renders the fixture's JavaScript shell, not its static pages", () => {
    expect(decideBrowser("auto", { html: jsShellHtml(1) })).toEqual({
      render: true,
      reason: "SPA shell: an app root with little text, and script bundles",
    });
    expect(needsBrowser("auto", { html: article })).toBe(false);
    // Once rendered, the same page has enough text.
    const rendered = htmlPage("Item", `<div id="root"><p>${jsItemText(1)}</p></div>`);
    expect(htmlShape(rendered).textLength).toBeGreaterThanOrEqual(THIN_TEXT_CHARS);
  });

  it("auto renders thin text with scripts, counting only visible characters", () => {
    const padded = htmlPage(
      "Thin",
      `<p>Loading…</p><script>${"var x = 1;".repeat(500)}</script><style>${"p{}".repeat(300)}</style>`,
      `<meta name="description" content="${words(500)}">`,
    );
    expect(htmlShape(padded).textLength).toBeLessThan(20);
    expect(decideBrowser("auto", { html: padded }).reason).toMatch(/^thin text/);
    // Whitespace runs count once.
    expect(htmlShape(htmlPage("t", `<p>a${" ".repeat(500)}b</p>`)).textLength).toBe(3);
  });

  it("auto does not render thin pages no script could change, nor non-HTML", () => {
    expect(decideBrowser("auto", { html: htmlPage("Short", "<p>Short.</p>") })).toEqual({
      render: false,
      reason: "no scripts",
    });
    // JSON-LD is data, not a script that runs.
    const jsonLd = htmlPage(
      "Data",
      "<p>Hi</p>",
      '<script type="application/ld+json">{"@type":"Organization"}</script>',
    );
    expect(needsBrowser("auto", { html: jsonLd })).toBe(false);
    expect(needsBrowser("auto", { html: '{"a":1}', contentType: "application/json" })).toBe(false);
  });

  it("auto spots SPA shells whose surroundings have text: Next, Angular, module bundles", () => {
    const chrome = `<header><p>${words(300)}</p></header>`;
    const next = htmlPage(
      "Next",
      `${chrome}<div id="__next"></div><script src="/_next/static/chunks/main.js"></script>`,
    );
    expect(htmlShape(next).textLength).toBeGreaterThanOrEqual(THIN_TEXT_CHARS);
    expect(needsBrowser("auto", { html: next })).toBe(true);
    const angular = htmlPage(
      "Angular",
      `${chrome}<app-root></app-root><script type="module" src="main.js"></script>`,
    );
    expect(needsBrowser("auto", { html: angular })).toBe(true);
    // A server-rendered root full of text needs no browser.
    const ssr = htmlPage(
      "SSR",
      `<div id="root"><p>${words(600)}</p></div><script src="/bundle.js"></script>`,
    );
    expect(needsBrowser("auto", { html: ssr })).toBe(false);
  });

  it("auto renders a page whose noscript asks for JavaScript", () => {
    const page = htmlPage(
      "App",
      `<p>${words(300)}</p><noscript>You need to enable JavaScript to run this app.</noscript><script>start()</script>`,
    );
    expect(decideBrowser("auto", { html: page }).reason).toBe("the page asks for JavaScript");
  });

  it("takes the caller's text length when given", () => {
    expect(needsBrowser("auto", { html: article, textLength: 10 })).toBe(false);
    const scripted = htmlPage("S", `<p>${words(400)}</p><script>go()</script>`);
    expect(needsBrowser("auto", { html: scripted, textLength: 10 })).toBe(true);
  });
});
