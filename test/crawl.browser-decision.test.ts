import { readdirSync, readFileSync } from "node:fs";
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

/**
 * Company pages whose facts a script fills in after load, while static text surrounds them: the
 * page is not thin and has no app root, yet the facts are not in the fetched HTML.
 */
describe("auto on pages with script-filled facts among static text", () => {
  const nav = `<nav><a href="/">Home</a> <a href="/about">About us</a> <a href="/contact">Contact</a></nav>`;
  const about = `<h1>Acme Robotics</h1><p>${words(900)}</p><footer><p>${words(300)}</p></footer>`;
  const companyPage = (facts: string, head = "") =>
    htmlPage("Acme Robotics", `${nav}${about}${facts}`, head);
  const gtag = `<script async src="https://www.googletagmanager.com/gtag/js?id=G-1"></script><script>window.dataLayer=window.dataLayer||[];function gtag(){dataLayer.push(arguments)}gtag("js",new Date());gtag("config","G-1");</script>`;

  it("renders when an inline script writes into an empty container", () => {
    const page = companyPage(
      `<section id="facts"></section><script>fetch("/facts.json").then((r) => r.json()).then((f) => { document.getElementById("facts").innerHTML = "<p>Founded " + f.founded + "</p>"; });</script>`,
    );
    expect(decideBrowser("auto", { html: page })).toEqual({
      render: true,
      reason: "a script fills the empty #facts",
    });
    const jquery = companyPage(
      `<div id="key-figures"></div><script src="/jquery.js"></script><script>$("#key-figures").html(figures);</script>`,
    );
    expect(decideBrowser("auto", { html: jquery }).reason).toBe(
      "a script fills the empty #key-figures",
    );
  });

  it("renders labelled fields left blank for an external script to fill", () => {
    const colon = companyPage(
      `<p>Employees: <span id="employees"></span></p><script src="/facts.js"></script>`,
    );
    expect(decideBrowser("auto", { html: colon }).reason).toBe(
      "an empty field #employees beside scripts",
    );
    const definitions = companyPage(
      `<dl><dt>Founded</dt><dd id="founded"></dd><dt>City</dt><dd id="city"></dd></dl><script type="module" src="/facts.js"></script>`,
    );
    expect(needsBrowser("auto", { html: definitions })).toBe(true);
  });

  it("renders unfilled template placeholders, a mount point and a noscript notice", () => {
    const vue = companyPage(
      `<div class="facts"><p>Founded in {{ company.founded }}, {{ company.employees }} people.</p></div><script src="/vue.js"></script>`,
    );
    expect(decideBrowser("auto", { html: vue }).reason).toBe(
      "unfilled {{ }} template placeholders",
    );
    const mount = companyPage(
      `<div id="app"></div><script>const app = document.getElementById("app"); app.replaceChildren(render(facts));</script>`,
    );
    expect(decideBrowser("auto", { html: mount }).reason).toBe("a script fills the empty #app");
    const noscript = companyPage(
      `<div class="facts" id="company-facts"></div><noscript>Please enable JavaScript to see our company facts.</noscript><script src="/facts.js"></script>`,
    );
    expect(decideBrowser("auto", { html: noscript }).reason).toBe("the page asks for JavaScript");
  });

  it("renders little text beside a lot of inline script", () => {
    const page = htmlPage(
      "Acme",
      `${nav}<p>${words(400)}</p><script>${"var facts = render(data);".repeat(300)}</script>`,
    );
    expect(decideBrowser("auto", { html: page }).reason).toMatch(/^little text \(\d+ characters\)/);
  });

  it("leaves static pages with analytics, widgets and icons on the fetch path", () => {
    const page = companyPage(
      `<p>Founded: 1998. Employees: 240.</p><div id="fb-root"></div><div id="cookie-consent"></div><span id="logo-icon" class="icon"></span><p>Follow us <span id="share-count"></span></p><script>document.getElementById("cookie-consent").append(banner());</script>${gtag}`,
      `<noscript><iframe src="https://www.googletagmanager.com/ns.html?id=GTM-1"></iframe></noscript>`,
    );
    expect(decideBrowser("auto", { html: page })).toMatchObject({ render: false });
    // A long article has its text already, whatever an empty widget would show.
    const article = htmlPage(
      "News",
      `<article><p>${words(6_000)}</p><p>Related: <span id="related"></span></p></article><script src="/widgets.js"></script>`,
    );
    expect(needsBrowser("auto", { html: article })).toBe(false);
  });

  it("leaves real static articles with ads and analytics on the fetch path", () => {
    const dir = new URL("./fixtures/real-pages/", import.meta.url);
    const pages = readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory());
    expect(pages.length).toBeGreaterThanOrEqual(6);
    for (const page of pages) {
      const html = readFileSync(new URL(`${page.name}/source.html`, dir), "utf8");
      expect({ page: page.name, ...decideBrowser("auto", { html }) }).toMatchObject({
        page: page.name,
        render: false,
      });
    }
  });
});
