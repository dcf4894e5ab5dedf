/**
 * Pages/s through extractPageContent (linkedom parse, structured data, links, Readability,
 * the Markdown walk) over the fixture pages, each repeated N times, in one thread. Extraction must stay
 * well above the crawl figures issue 3 aims at (browser path 20 pages/s, fetch path 200 pages/s).
 * Pages per CPU-second is printed beside the wall-clock figure, since other processes on the
 * machine take cores away from the wall clock. The last line measures a page shaped like a real news
 * page of ~100 KB (scripts, styles, menus, related links) so that the small fixtures do not
 * flatter the figure.
 *
 *   node --import tsx bench/page-content.ts [repeat=500]
 */
import { readdirSync, readFileSync } from "node:fs";
import { extractPageContent } from "../src/crawl/page-content.ts";

const repeat = Number(process.argv[2] ?? 500);
const dir = new URL("../test/fixtures/pages/", import.meta.url);
const fixtures = readdirSync(dir)
  .filter((name) => name.endsWith(".html"))
  .sort()
  .map((name) => ({ name, html: readFileSync(new URL(name, dir), "utf8") }));

interface Figure {
  wall: number;
  cpu: number;
  kb: number;
}

function measure(pages: string[], times: number): Figure {
  const extract = () => {
    let chars = 0;
    for (const html of pages)
      chars += extractPageContent(html, "https://bench.example/p").markdown.length;
    if (chars === 0) throw new Error("no Markdown extracted");
  };
  for (let i = 0; i < Math.min(times, 50); i++) extract(); // warm the JIT
  const cpuStart = process.cpuUsage();
  const started = performance.now();
  for (let i = 0; i < times; i++) extract();
  const wallSeconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuStart);
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;
  const n = times * pages.length;
  const kb = pages.reduce((sum, html) => sum + html.length, 0) / pages.length / 1024;
  return { wall: n / wallSeconds, cpu: n / cpuSeconds, kb };
}

const show = (label: string, f: Figure) =>
  console.log(
    `${label}: ${f.wall.toFixed(0)} pages/s (${f.cpu.toFixed(0)} per CPU-second), ${f.kb.toFixed(1)} KB a page`,
  );

show(
  `extractPageContent, ${fixtures.length} fixtures × ${repeat}`,
  measure(
    fixtures.map((f) => f.html),
    repeat,
  ),
);
for (const fixture of fixtures) {
  show(`  ${fixture.name}`, measure([fixture.html], Math.max(50, Math.round(repeat / 5))));
}

// A page shaped like a real news page of ~100 KB: inline scripts and styles, a long menu, the
// story, related links and a big footer, wrapped in nested divs with classes.
const article = fixtures.find((f) => f.name === "article.html")!.html;
const story = /<article[\s\S]*<\/article>/.exec(article)![0];
const menu = Array.from(
  { length: 150 },
  (_, i) =>
    `<li class="menu-item menu-item-${i}"><a class="menu-link" href="/section/${i}">Section ${i}</a></li>`,
).join("");
const related = Array.from(
  { length: 60 },
  (_, i) =>
    `<div class="card"><div class="card-body"><a href="/news/${i}"><span class="kicker">News</span><h4>Related story number ${i} with a long headline</h4></a></div></div>`,
).join("");
const script = `<script>${"window.dataLayer=window.dataLayer||[];function gtag(){dataLayer.push(arguments)};".repeat(400)}</script>`;
const style = `<style>${".a-class-name{margin:0 auto;padding:4px 8px;color:#333}".repeat(300)}</style>`;
const heavy = article
  .replace("</head>", `${style}${script}</head>`)
  .replace(
    '<nav class="main-nav">',
    `<nav class="mega-menu"><ul>${menu}</ul></nav><nav class="main-nav">`,
  )
  .replace(
    story,
    `<div class="wrap"><div class="row"><div class="col">${story}</div></div></div><div class="related">${related}</div>${script}`,
  );
const heavyFigure = measure([heavy], Math.max(20, Math.round(repeat / 10)));
show(`extractPageContent, a news page of ${heavyFigure.kb.toFixed(0)} KB`, heavyFigure);
console.log("aims of issue 3: browser path ≥ 20 pages/s, fetch path ≥ 200 pages/s");
