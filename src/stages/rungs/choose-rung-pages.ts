import type { CrawlStageConfig, SelectStageConfig } from "../../config/config-types.ts";
import type { OutputSpec } from "../../core/output-types.ts";
import type { CrawledRef } from "../crawl-stage.ts";
import { createLinkScorer } from "../link-score.ts";
import type { ResearchServices } from "../research-services.ts";
import { domainOf, onDomain } from "../select-stage.ts";
import { siteOf, withoutFragment } from "../site-of.ts";
import type { StageInputRow } from "../stage-runner.ts";
import { wordsOf } from "../words-of.ts";
import type { RungTarget } from "./rung-pages.ts";

/**
 * `render`: the row's pages that were only fetched, read again in Chromium whatever `auto`
 * decided (a script may fill the facts into a page that already has static text). Pages already
 * rendered, or served from a cache whose copy was rendered, cost nothing and bring nothing new.
 */
export function renderTargets(pages: readonly CrawledRef[], max: number): RungTarget[] {
  return pages
    .filter((page) => page.path !== "browser" && page.status < 400)
    .slice(0, max)
    .map((page) => ({ url: page.url, javascript: "always", depth: page.depth }));
}

/**
 * `deeper`: one level more of the row's own site (its domain input's, else its seeds' sites),
 * the links ranked by the gap columns' names and descriptions — links whose text has no follow
 * word at all included, last — and never a page already read.
 */
export async function deeperTargets(
  services: ResearchServices,
  row: StageInputRow,
  pages: readonly CrawledRef[],
  gaps: readonly OutputSpec[],
  crawl: CrawlStageConfig,
  select: SelectStageConfig | undefined,
  max: number,
  signal: AbortSignal,
): Promise<RungTarget[]> {
  const domain = select?.domainInput ? domainOf(row.fields[select.domainInput]) : undefined;
  // The row's own site by its host: a directory's `/company/acme.com` page is not acme.com's.
  const own = (url: string) => {
    if (!domain) return true;
    const host = hostOf(url);
    return host === domain || host.endsWith(`.${domain}`);
  };
  const seeds = pages.filter((p) => p.depth === 0 && own(p.final_url));
  const sites = new Set(seeds.map((p) => siteOf(p.final_url)));
  const seen = new Set(pages.flatMap((p) => [p.url, p.final_url].map(withoutFragment)));
  const score = createLinkScorer(
    gaps.flatMap((g) => [...wordsOf(g.name), ...wordsOf(g.description)]),
  );
  const candidates: Array<RungTarget & { score: number; order: number }> = [];
  let order = 0;
  for (const page of pages.filter((p) => sites.has(siteOf(p.final_url)))) {
    if (signal.aborted) break;
    const links = await services
      .pages()
      .links(page.url, { javascript: crawl.javascript, signal })
      .catch(() => []);
    for (const link of links) {
      const url = withoutFragment(link.url);
      if (seen.has(url) || !sites.has(siteOf(url))) continue;
      seen.add(url);
      candidates.push({
        url,
        javascript: crawl.javascript,
        depth: page.depth + 1,
        via: page.url,
        score: score(url, link.text),
        order: order++,
      });
    }
  }
  candidates.sort((a, b) => b.score - a.score || a.order - b.order);
  return candidates.slice(0, max).map(({ url, javascript, depth, via }) => ({
    url,
    javascript,
    depth,
    ...(via ? { via } : {}),
  }));
}

/**
 * `search_more`: new results, not read yet, for queries aimed at the gap columns; the row's own
 * domain first, then in the engine's order.
 */
export function searchTargets(
  results: ReadonlyArray<{ url: string }>,
  pages: readonly CrawledRef[],
  domain: string | undefined,
  crawl: CrawlStageConfig,
  max: number,
): RungTarget[] {
  const seen = new Set(pages.flatMap((p) => [p.url, p.final_url].map(withoutFragment)));
  const fresh: string[] = [];
  for (const r of results) {
    const url = withoutFragment(r.url);
    if (seen.has(url)) continue;
    seen.add(url);
    fresh.push(url);
  }
  const ranked = domain
    ? [...fresh.filter((u) => onDomain(u, domain)), ...fresh.filter((u) => !onDomain(u, domain))]
    : fresh;
  return ranked.slice(0, max).map((url) => ({ url, javascript: crawl.javascript, depth: 0 }));
}

function hostOf(url: string): string {
  try {
    return new URL(url).hostname.toLowerCase().replace(/^www\./, "");
  } catch {
    return "";
  }
}
