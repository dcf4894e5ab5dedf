import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { compactHtml } from "../src/crawl/compact-html.ts";
import { extractPageContent } from "../src/crawl/page-content.ts";

/** What no reader sees is cut before the parse; text and JSON-LD stay. */

describe("compactHtml", () => {
  it("cuts scripts, styles, comments and drawings, keeps text and JSON-LD", () => {
    const html = `<html><head><style>p{color:red}</style><script src="/a.js"></script>
<script type="application/ld+json">{"@type":"Organization","foundingDate":"1998"}</script></head>
<body><!-- a <p>commented</p> --><p>Founded in 1998.</p><script>var s = "<!-- not a comment";</script>
<svg viewBox="0 0 1 1"><text>drawing</text></svg><p>Employees: 240.</p></body></html>`;
    const compact = compactHtml(html);
    expect(compact).not.toMatch(/color:red|a\.js|commented|not a comment|drawing/);
    expect(compact).toContain('{"@type":"Organization","foundingDate":"1998"}');
    expect(compact).toContain("<p>Founded in 1998.</p>");
    expect(compact).toContain("<p>Employees: 240.</p>");
  });

  it("shrinks a real page by more than a third without changing its Markdown", () => {
    const html = readFileSync(
      new URL("./fixtures/real-pages/bbc-1/source.html", import.meta.url),
      "utf8",
    );
    expect(compactHtml(html).length).toBeLessThan((html.length * 2) / 3);
    // extractPageContent compacts first; compacting twice changes nothing.
    const once = extractPageContent(html, "https://www.bbc.com/news/article");
    const twice = extractPageContent(compactHtml(html), "https://www.bbc.com/news/article");
    expect(twice.markdown).toBe(once.markdown);
    expect(twice.structured).toEqual(once.structured);
  });
});
