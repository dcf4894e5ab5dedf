import { readdirSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parseHtmlDocument } from "../src/crawl/extract-dom.ts";
import { htmlToMarkdown } from "../src/crawl/extract-markdown.ts";
import { extractPageContent } from "../src/crawl/page-content.ts";
import { stripBoilerplate } from "../src/crawl/strip-boilerplate.ts";

/**
 * A page without an article keeps its visible text minus boilerplate: on every page of the demo
 * web and the fixture pages no fact is lost, navigation goes; and on hand-written hostile pages
 * (facts only in a footer, a wordy cookie banner, a bakery that sells cookies, a cookie policy)
 * the right blocks go and the right ones stay.
 */

function markdownOf(html: string, strip: boolean): string {
  const body = parseHtmlDocument(html).body!;
  if (strip) stripBoilerplate(body);
  return htmlToMarkdown(body, "https://site.example/");
}

const page = (body: string) =>
  `<!doctype html><html><head><title>t</title></head><body>${body}</body></html>`;

describe("on the demo web", () => {
  const root = new URL("../demo/corpus/", import.meta.url);
  const truth = JSON.parse(
    readFileSync(new URL("../demo/truth.json", import.meta.url), "utf8"),
  ) as Record<string, Record<string, { value: unknown; urls: string[] }>>;
  // Every true value, by the page that states it.
  const valuesByPage = new Map<string, string[]>();
  for (const facts of Object.values(truth)) {
    for (const fact of Object.values(facts)) {
      if (typeof fact !== "object" || fact === null || !Array.isArray(fact.urls)) continue;
      for (const url of fact.urls) {
        const values = valuesByPage.get(url) ?? [];
        values.push(String(fact.value));
        valuesByPage.set(url, values);
      }
    }
  }
  const pages = readdirSync(root, { recursive: true, encoding: "utf8" }).filter((p) =>
    p.endsWith(".html"),
  );

  it("keeps every true value the page's text states, and drops the site navigation", () => {
    expect(pages.length).toBeGreaterThan(900);
    let checked = 0;
    let before = 0;
    let after = 0;
    for (const path of pages) {
      const html = readFileSync(new URL(path, root), "utf8");
      const whole = markdownOf(html, false);
      const stripped = markdownOf(html, true);
      before += whole.length;
      after += stripped.length;
      for (const value of valuesByPage.get(path) ?? []) {
        if (!whole.includes(value)) continue; // in JSON-LD, microdata attributes or a script
        checked++;
        expect(stripped, `${path}: ${value}`).toContain(value);
      }
      if (/<nav>/.test(html)) {
        expect(stripped, path).not.toMatch(/\[Home\]\([^)]*\)/);
      }
    }
    expect(checked).toBeGreaterThan(500);
    // The navigation and chrome are a real part of these small pages.
    expect(after).toBeLessThan(before * 0.95);
  });

  it("an organisation's page through extractPageContent: its text and its footer's email stay", () => {
    const html = readFileSync(new URL("achterberg-lodges.example/index.html", root), "utf8");
    const content = extractPageContent(html, "https://achterberg-lodges.example/index.html");
    expect(content.source).toBe("body");
    expect(content.markdown).toContain("we manage holiday cottages");
    expect(content.markdown).toContain("- Holiday lets");
    expect(content.markdown).toContain("hello@achterberg-lodges.example");
    expect(content.markdown).not.toContain("[News]");
    // The links to follow are read before the boilerplate goes.
    expect(content.links.map((l) => l.text)).toContain("News");
  });
});

describe("on the fixture pages", () => {
  const fixture = (name: string) =>
    readFileSync(new URL(`./fixtures/pages/${name}.html`, import.meta.url), "utf8");

  it("the news page's body loses its nav, most-read list, newsletter box and cookie bar", () => {
    const md = markdownOf(fixture("article"), true);
    expect(md).toContain("The city council voted on Monday to replace its entire diesel ferry");
    for (const boilerplate of [
      "Subscribe to the Courier newsletter",
      "Storm closes bridge",
      "Cookie settings",
    ]) {
      expect(markdownOf(fixture("article"), false)).toContain(boilerplate);
      expect(md).not.toContain(boilerplate);
    }
  });

  it("the contact and restaurant pages keep every fact", () => {
    const contact = markdownOf(fixture("no-article"), true);
    for (const fact of [
      "12 Market Street",
      "+44 113 496 0000",
      "hello@northwind.example",
      "| Warehouse | Wakefield | 40 |",
      "Registered in England No. 01234567",
    ]) {
      expect(contact).toContain(fact);
    }
    const restaurant = markdownOf(fixture("restaurant"), true);
    for (const fact of ["Rated 4.6/5 from 212 reviews", "Closed on Mondays.", "14 Harbour Walk"]) {
      expect(restaurant).toContain(fact);
    }
  });
});

describe("hostile pages", () => {
  it("facts that only sit in a footer contact block are kept; the footer's link columns go", () => {
    const md = markdownOf(
      page(`
      <header><a href="/">Acme</a><nav><a href="/a">About</a> <a href="/p">Products</a> <a href="/c">Careers</a></nav></header>
      <main><h1>Welcome to Acme</h1><p>Robots for warehouses.</p></main>
      <footer class="site-footer">
        <div class="footer-contact">
          <h4>Contact</h4>
          <p>Acme Robotics GmbH, Hafenstraße 5, 20457 Hamburg<br>
          Phone <a href="tel:+494012345">+49 40 12345</a> · <a href="mailto:info@acme.example">info@acme.example</a><br>
          Founded in 1998 · 120 employees · Registered at Amtsgericht Hamburg HRB 12345</p>
        </div>
        <ul class="footer-links"><li><a href="/privacy">Privacy</a></li><li><a href="/terms">Terms</a></li><li><a href="/imprint">Imprint</a></li></ul>
        <div class="follow"><a href="https://twitter.example/acme">Twitter</a> <a href="https://linkedin.example/acme">LinkedIn</a></div>
      </footer>`),
      true,
    );
    for (const fact of [
      "Hafenstraße 5, 20457 Hamburg",
      "+49 40 12345",
      "info@acme.example",
      "Founded in 1998",
      "120 employees",
      "HRB 12345",
      "Robots for warehouses.",
    ]) {
      expect(md).toContain(fact);
    }
    for (const gone of ["Privacy", "Imprint", "LinkedIn", "Careers"])
      expect(md).not.toContain(gone);
  });

  it("a cookie banner with many words goes, with or without a telling class name", () => {
    const legal =
      "We and our 842 partners use cookies and similar technologies to store and access information on your device, " +
      "to measure audiences, to show personalised advertising and content, and to develop and improve products. " +
      "Some partners process your personal data on the basis of legitimate interest, which you can object to in the settings. " +
      "You can change your preferences at any time by visiting the cookie settings linked at the bottom of every page. ".repeat(
        3,
      );
    const facts =
      "<main><h1>Northwind</h1><p>Northwind was founded in 1987 and employs 450 people in Leeds.</p></main>";
    for (const banner of [
      `<div id="x1"><p>${legal}</p><button>Accept all cookies</button><button>Reject all</button><a href="/cookies">Manage cookie preferences</a></div>`,
      `<div class="cc-window cookie-banner"><p>We use cookies.</p><a href="/ok">OK</a></div>`,
      `<section aria-label="Consent"><h2>Your privacy</h2><p>Short notice.</p></section>`,
    ]) {
      const md = markdownOf(page(banner + facts), true);
      expect(md).toContain("Northwind was founded in 1987 and employs 450 people in Leeds.");
      expect(md).not.toMatch(/partners|We use cookies|Your privacy/);
    }
  });

  it("a bakery that sells cookies and a cookie policy page keep their text", () => {
    const bakery = markdownOf(
      page(`<main><h1>Crumb & Co</h1><p>We bake cookies: oat cookies, ginger cookies and chocolate chip cookies, since 1962.</p>
      <p>We accept orders for cookies by phone. 35 bakers work in our two shops.</p>
      <div class="cookie-grid"><div class="cookie-card">Oat cookie £1.20</div><div class="cookie-card">Ginger cookie £1.40</div></div></main>`),
      true,
    );
    expect(bakery).toContain("since 1962");
    expect(bakery).toContain("35 bakers");
    expect(bakery).toContain("Ginger cookie £1.40");
    const policy = markdownOf(
      page(`<nav><a href="/">Home</a> <a href="/privacy">Privacy</a></nav><main><h1>Cookie policy</h1>
      <p>This website uses cookies. We use cookies for analytics and advertising with our partners. You can manage cookie settings and withdraw consent.</p>
      <div class="section"><h2>Your choices</h2><p>You can accept all cookies or reject all cookies in your browser's cookie settings.</p></div></main>`),
      true,
    );
    expect(policy).toContain("This website uses cookies.");
    expect(policy).toContain("reject all cookies in your browser's cookie settings");
    expect(policy).not.toContain("[Home]");
  });

  it("share buttons, related lists, newsletter boxes and skip links go; a food menu stays", () => {
    const md = markdownOf(
      page(`<a href="#main">Skip to content</a>
      <div class="share-buttons"><a href="https://facebook.example/share">Share</a> <a href="https://twitter.example/intent">Tweet</a></div>
      <main id="main"><h1>Trattoria Lucia</h1><p>Family-run since 2009, 60 seats.</p>
        <div class="menu"><h2>Menu</h2><ul><li>Margherita £9.50</li><li>Tagliatelle al ragù £12.00</li></ul></div>
      </main>
      <h3>Related articles</h3>
      <ul><li><a href="/a">Ten pizzas to try</a></li><li><a href="/b">Where to eat in Bristol</a></li></ul>
      <div class="related-posts"><a href="/c">Best gelato</a></div>
      <div class="newsletter-signup"><p>Get our news every week</p></div>`),
      true,
    );
    expect(md).toContain("Family-run since 2009, 60 seats.");
    expect(md).toContain("- Tagliatelle al ragù £12.00");
    for (const gone of [
      "Skip to content",
      "Tweet",
      "Related articles",
      "Ten pizzas",
      "Best gelato",
      "news every week",
    ]) {
      expect(md).not.toContain(gone);
    }
  });
});
