import { readdirSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { collapseWhitespace, parseHtmlDocument } from "../src/crawl/extract-dom.ts";
import { capMarkdown } from "../src/crawl/extract-markdown.ts";
import { extractPageContent } from "../src/crawl/page-content.ts";

/**
 * extractPageContent over the fixture pages: Readability's article as Markdown (boilerplate
 * dropped), the body fallback, absolute deduplicated links, and the structured data as parsed.
 */

function fixture(name: string): string {
  return readFileSync(new URL(`./fixtures/pages/${name}.html`, import.meta.url), "utf8");
}

describe("main text", () => {
  it("keeps the article of a news page and drops its nav, sidebar and footer", () => {
    const page = extractPageContent(
      fixture("article"),
      "https://courier.example/news/electric-ferries",
    );
    expect(page.source).toBe("article");
    expect(page.truncated).toBe(false);
    expect(page.title).toBe("Harbour city bets on electric ferries");
    const md = page.markdown;
    expect(md.startsWith("# Harbour city bets on electric ferries\n\n")).toBe(true);
    expect(md).toContain("## Quieter crossings");
    expect(md).toContain(
      "The city council voted on Monday to replace its entire diesel ferry fleet with six " +
        "battery-electric boats by 2027",
    );
    expect(md).toContain("Critics on the council questioned whether the grid connection");
    // Lists and tables survive as text.
    expect(md).toMatch(/^- +Six ferries, 300 passengers each$/m);
    expect(md).toContain(
      "| Route | Crossings per day |\n| --- | --- |\n| Old town – Island | 64 |\n| Old town – Port | 48 |",
    );
    // Links in the text are absolute.
    expect(md).toContain("[full ferry plan](https://courier.example/documents/ferry-plan.pdf)");
    // Boilerplate is gone.
    for (const boilerplate of [
      "World news desk",
      "Subscribe to the Courier newsletter",
      "Most read",
      "Storm closes bridge",
      "All rights reserved",
      "Cookie settings",
    ]) {
      expect(md).not.toContain(boilerplate);
    }
    // Nothing but text.
    expect(md).not.toMatch(/<\/?[a-z]+[\s>]/i);
  });

  it("keeps the heading Readability folds into the title, and the article's subheadings", () => {
    const page = extractPageContent(fixture("organisation"), "https://acme.example/about");
    expect(page.source).toBe("article");
    expect(page.title).toBe("About Acme Robotics");
    expect(page.markdown.split("\n")[0]).toBe("# About Acme Robotics");
    expect(page.markdown).toContain("## What we make");
    expect(page.markdown).toContain("Acme Robotics was founded in Hamburg in 1998");
    expect(page.markdown).toContain("[customers](https://acme.example/customers)");
    expect(page.markdown).not.toContain("Products");
    expect(page.markdown).not.toContain("Imprint");
    // JSON-LD is structured data, not text.
    expect(page.markdown).not.toContain("@context");
  });

  it("falls back to the whole body when the page has no article", () => {
    const page = extractPageContent(fixture("no-article"), "https://northwind.example/contact");
    expect(page.source).toBe("body");
    expect(page.title).toBe("Contact – Northwind Traders");
    const md = page.markdown;
    expect(md.startsWith("# Contact – Northwind Traders\n\n")).toBe(true);
    expect(md).toContain("[Northwind](https://northwind.example/)");
    expect(md).toContain("**Head office**\n12 Market Street\nLeeds LS1 6DT");
    expect(md).toContain("[hello@northwind.example](mailto:hello@northwind.example)");
    expect(md).toContain(
      "| Office | City | Staff |\n| --- | --- | --- |\n| Head office | Leeds | 85 |\n| Warehouse | Wakefield | 40 |",
    );
    expect(md).toContain("Registered in England No. 01234567");
  });

  it("the restaurant page, short blocks only, falls back to the body too", () => {
    const page = extractPageContent(fixture("restaurant"), "https://lucia.example/");
    expect(page.source).toBe("body");
    expect(page.markdown).toContain("# Trattoria Lucia");
    expect(page.markdown).toContain("Rated 4.6/5 from 212 reviews");
    expect(page.markdown).toContain("Closed on Mondays.");
    expect(page.markdown).not.toContain("dining-room.jpg"); // images are dropped
  });

  it("caps the Markdown at a paragraph boundary", () => {
    const full = extractPageContent(fixture("article"), "https://courier.example/a");
    const capped = extractPageContent(fixture("article"), "https://courier.example/a", {
      maxMarkdownChars: 700,
    });
    expect(capped.truncated).toBe(true);
    expect(capped.markdown.length).toBeLessThanOrEqual(700);
    expect(capped.markdown.length).toBeGreaterThan(350);
    // A prefix of the full text that ends where a paragraph ended.
    expect(full.markdown.startsWith(capped.markdown)).toBe(true);
    expect(full.markdown.slice(capped.markdown.length).startsWith("\n\n")).toBe(true);
    expect(capped.markdown.endsWith("island suburbs.")).toBe(true);
  });

  it("capMarkdown falls back to a line, a word, then a hard cut", () => {
    expect(capMarkdown("short", 10)).toEqual({ markdown: "short", truncated: false });
    expect(capMarkdown("aaaa\n\nbbbb\n\ncccc", 12)).toEqual({
      markdown: "aaaa\n\nbbbb",
      truncated: true,
    });
    expect(capMarkdown("aaaaaa\nbbbbbb cccccc", 16)).toEqual({
      markdown: "aaaaaa\nbbbbbb",
      truncated: true,
    });
    expect(capMarkdown("aaaaaa bbbbbb cccccc", 16)).toEqual({
      markdown: "aaaaaa bbbbbb",
      truncated: true,
    });
    expect(capMarkdown("x".repeat(50), 16)).toEqual({ markdown: "x".repeat(16), truncated: true });
    expect(capMarkdown("abc", 0)).toEqual({ markdown: "", truncated: true });
  });

  it("survives empty pages and fragments", () => {
    const empty = extractPageContent("", "https://x.example/");
    expect(empty).toMatchObject({ title: "", markdown: "", source: "body", links: [] });
    expect(empty.structured).toEqual({
      jsonLd: [],
      jsonLdErrors: 0,
      microdata: [],
      openGraph: {},
      meta: {},
    });
    const fragment = extractPageContent(
      "<p>Hello <a href='/w'>world</a></p>",
      "https://x.example/a/",
    );
    expect(fragment.markdown).toBe("Hello [world](https://x.example/w)");
    expect(fragment.links).toEqual([{ url: "https://x.example/w", text: "world" }]);
  });
});

describe("links", () => {
  it("are absolute, http(s) only, without fragments, each once with its first text", () => {
    const page = extractPageContent(fixture("links"), "https://site.example/dir/links.html");
    expect(page.links).toEqual([
      { url: "https://site.example/about", text: "About" },
      { url: "https://site.example/dir/about", text: "Relative about" },
      { url: "https://site.example/team/", text: "Team" },
      { url: "https://site.example/dir/contact?via=links", text: "Contact" },
      { url: "https://partner.example/home", text: "Partner" },
      { url: "https://cdn.example.org/brochure.pdf", text: "Brochure" },
      { url: "https://site.example/area-link", text: "Area" },
    ]);
  });

  it("resolve against <base href>, and a later text fills an empty first one", () => {
    const html = `<html><head><base href="https://cdn.example/base/"></head><body>
      <a href="img.html"><img src="x.png"></a> <a href="img.html#more">Gallery</a>
      <a href="https://x.example/page#top">Self</a></body></html>`;
    const page = extractPageContent(html, "https://x.example/page");
    expect(page.links).toEqual([{ url: "https://cdn.example/base/img.html", text: "Gallery" }]);
  });
});

describe("structured data", () => {
  it("JSON-LD: @graph and arrays flattened with their context, a broken block counted", () => {
    const { structured } = extractPageContent(
      fixture("organisation"),
      "https://acme.example/about",
    );
    expect(structured.jsonLd.map((node) => node["@type"])).toEqual([
      "WebSite",
      "Organization",
      "AboutPage",
      "BreadcrumbList",
      "Product",
    ]);
    expect(structured.jsonLd.every((node) => node["@context"] === "https://schema.org")).toBe(true);
    expect(structured.jsonLdErrors).toBe(1);
    expect(structured.jsonLd[1]).toMatchObject({
      name: "Acme Robotics",
      foundingDate: "1998-05-01",
      numberOfEmployees: { "@type": "QuantitativeValue", value: 120 },
      address: { addressLocality: "Hamburg", addressCountry: { name: "DE" } },
    });
    expect(structured.openGraph).toEqual({
      "og:title": "About Acme Robotics",
      "og:site_name": "Acme Robotics",
    });
    expect(structured.meta).toEqual({
      description: "Acme Robotics builds autonomous warehouse robots.",
    });
    expect(structured.microdata).toEqual([]);
  });

  it("JSON-LD wrapped in a comment or CDATA, with a charset parameter, still parses", () => {
    const html = `<html><head>
      <script type="application/ld+json; charset=utf-8"><!-- {"@type": "Thing", "name": "A"} --></script>
      <script type="application/ld+json">//<![CDATA[
        {"@type": "Thing", "name": "B"};
      //]]></script>
      <script type="application/ld+json">   </script>
      <script type="application/ld+json">{"@type": "Thing", "name": </script>
      <script type="application/json">{"not": "json-ld"}</script>
      <script type="application/ld+json">[1, "x", {"@graph": [{"@type": "Thing", "name": "C"}]}]</script>
      </head><body></body></html>`;
    const { structured } = extractPageContent(html, "https://x.example/");
    expect(structured.jsonLd).toEqual([
      { "@type": "Thing", name: "A" },
      { "@type": "Thing", name: "B" },
      { "@type": "Thing", name: "C" },
    ]);
    expect(structured.jsonLdErrors).toBe(2); // the empty block and the truncated one
  });

  it("microdata: nested items, itemref, and each element's own value attribute", () => {
    const { structured } = extractPageContent(fixture("restaurant"), "https://lucia.example/menu");
    expect(structured.microdata).toEqual([
      {
        type: "https://schema.org/Restaurant",
        id: "https://lucia.example/#place",
        properties: {
          name: "Trattoria Lucia",
          description: "Fresh pasta, wood-fired pizza and a long list of Sicilian wines.",
          servesCuisine: ["Italian", "Pizza"],
          priceRange: "££",
          address: {
            type: "https://schema.org/PostalAddress",
            properties: {
              streetAddress: "14 Harbour Walk",
              addressLocality: "Bristol",
              postalCode: "BS1 5TY",
              addressCountry: "GB",
            },
          },
          telephone: "tel:+441179460000",
          url: "https://lucia.example/",
          image: "https://lucia.example/img/dining-room.jpg",
          aggregateRating: {
            type: "https://schema.org/AggregateRating",
            properties: { ratingValue: "4.6", reviewCount: "212" },
          },
          foundingDate: "2009-03-14",
          maximumAttendeeCapacity: "about 60",
          openingHours: ["Tu-Fr 12:00-22:00", "Sa-Su 11:00-23:00"],
        },
      },
    ]);
    expect(structured.meta).toEqual({ description: "Family-run Italian trattoria in Bristol." });
  });

  it("OpenGraph and meta: og:* apart, the first of a repeated key, no http-equiv", () => {
    const { structured } = extractPageContent(fixture("article"), "https://courier.example/a");
    expect(structured.openGraph).toEqual({
      "og:type": "article",
      "og:title": "Harbour city bets on electric ferries",
      "og:description": "Six electric ferries will replace the diesel fleet by 2027.",
      "og:url": "https://courier.example/news/electric-ferries",
      "og:site_name": "The Coastal Courier",
      "og:image": "https://courier.example/img/ferry.jpg",
    });
    expect(structured.meta).toEqual({
      description: "The city will replace its diesel ferry fleet with electric boats by 2027.",
      keywords: "ferries, electric, transport, harbour",
      author: "Mira Jensen",
      "twitter:card": "summary_large_image",
      "twitter:title": "Harbour city bets on electric ferries",
      "article:published_time": "2024-03-18T07:30:00+01:00",
      viewport: "width=device-width, initial-scale=1",
    });
  });
});

/** Six real pages (test/fixtures/real-pages): Readability's expected text and metadata. */
describe("extractPageContent on real pages", () => {
  const dir = new URL("./fixtures/real-pages/", import.meta.url);
  const names = readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isDirectory())
    .map((e) => e.name);
  const words = (text: string | null | undefined) =>
    (text ?? "").toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [];

  it.each(names)("%s keeps at least 98% of the expected text and its metadata", (name) => {
    const read = (file: string) => readFileSync(new URL(`${name}/${file}`, dir), "utf8");
    const content = extractPageContent(read("source.html"), `https://${name}.example/article`);
    const got = new Map<string, number>();
    for (const w of words(content.markdown.replace(/\]\([^)]*\)/g, "]"))) {
      got.set(w, (got.get(w) ?? 0) + 1);
    }
    const expected = words(parseHtmlDocument(read("expected.html")).documentElement?.textContent);
    let found = 0;
    for (const w of expected) {
      const n = got.get(w) ?? 0;
      if (n > 0) {
        found++;
        got.set(w, n - 1);
      }
    }
    expect(found / expected.length).toBeGreaterThanOrEqual(0.98);
    const metadata = JSON.parse(read("expected-metadata.json")) as Record<string, string | null>;
    for (const key of ["byline", "siteName", "publishedTime"] as const) {
      if (metadata[key] !== null) {
        // Readability keeps the byline's line breaks; Gleaner collapses whitespace.
        expect(content.metadata[key]).toBe(collapseWhitespace(metadata[key]));
      }
    }
  });
});
