import type { CrawlStageConfig } from "../config/config-types.ts";
import { CrawlError, findCrawlError } from "../crawl/crawl-error.ts";
import type { ReadPage } from "../crawl/page-reader.ts";
import { coerceError } from "../core/coerce-error.ts";
import type { OutputSpec } from "../core/output-types.ts";
import type { ResearchServices } from "./research-services.ts";
import type {
  StageChunkResult,
  StageContext,
  StageInputRow,
  StageRowResult,
  StageRunner,
} from "./stage-runner.ts";
import { createLinkScorer } from "./link-score.ts";
import { wordsOf } from "./words-of.ts";
import { stageUrls } from "./stage-data.ts";
import { siteOf, withoutFragment } from "./site-of.ts";

/**
 * What a `crawl` stage keeps in the row's state: references to the pages, not their text. The
 * text, links and structured data live once in the shared page cache (keyed by URL), where the
 * extract stage reads them; a row's state stays small however many pages it read.
 */
export interface CrawlData {
  pages: CrawledRef[];
  failures: Array<{ url: string; class: string; message: string }>;
  /** The row's time ran out (row_timeout) before every page was fetched. */
  timed_out?: boolean;
}

export interface CrawledRef {
  url: string;
  final_url: string;
  status: number;
  title: string;
  /** fetch: plain HTTP; browser: rendered in Chromium; cache: served by the page cache. */
  path: "fetch" | "browser" | "cache";
  depth: number;
  /** The page it was found on (followed links only). */
  via?: string;
  chars: number;
  fetched_at: string;
}

/** Pages fetched at once for one row; the per-host politeness still spaces them. */
const ROW_PARALLEL = 4;

interface Candidate {
  url: string;
  depth: number;
  via?: string;
  score: number;
  order: number;
}

export function createCrawlStage(
  config: CrawlStageConfig,
  outputs: readonly OutputSpec[],
  services: ResearchServices,
): StageRunner {
  const linkScore = createLinkScorer([
    ...config.followKeywords.flatMap((k) => wordsOf(k)),
    ...outputs.flatMap((o) => [...wordsOf(o.name), ...wordsOf(o.description)]),
  ]);

  const seedsOf = (row: StageInputRow): string[] => {
    const seeds: string[] = [];
    if (config.urlInput) {
      const raw = row.fields[config.urlInput];
      if (typeof raw === "string" && raw.trim() !== "") {
        const text = raw.trim();
        seeds.push(/^https?:\/\//i.test(text) ? text : `https://${text}`);
      }
    }
    if (config.urlsStage) {
      seeds.push(...stageUrls(row, config.urlsStage));
    }
    return [...new Set(seeds.map(withoutFragment))];
  };

  /** One page through the shared reader, which fetches, renders, extracts and caches it. */
  const crawlPage = async (url: string, signal: AbortSignal): Promise<ReadPage> => {
    const page = await services.pages().read(url, { javascript: config.javascript, signal });
    services.events.emit("crawl:page", {
      path: page.readBy,
      outcome: "ok",
      bytes:
        page.readBy === "browser"
          ? Buffer.byteLength(page.body)
          : page.readBy === "fetch"
            ? page.bytes
            : 0,
    });
    for (const refused of page.refusedRequests)
      if (refused.reason !== "blocked") services.events.emit("crawl:refused", { reason: "ssrf" });
    return page;
  };

  const crawlRow = async (row: StageInputRow, parent: AbortSignal): Promise<StageRowResult> => {
    const seeds = seedsOf(row);
    const data: CrawlData = { pages: [], failures: [] };
    if (seeds.length === 0) return { ok: true, values: {}, data };
    const signal = AbortSignal.any([parent, AbortSignal.timeout(config.rowTimeoutMs)]);
    let order = 0;
    const frontier: Candidate[] = seeds.map((url) => ({ url, depth: 0, score: 0, order: order++ }));
    const seen = new Set(seeds);
    let started = 0;
    let firstTransient: CrawlError | undefined;

    const next = (): Candidate | undefined => {
      if (frontier.length === 0) return undefined;
      // Seeds go first whatever the strategy: they were chosen for this row.
      let index: number;
      const seedIndex = frontier.findIndex((c) => c.depth === 0);
      if (seedIndex !== -1) index = seedIndex;
      else if (config.strategy === "breadth_first") index = 0;
      else if (config.strategy === "depth_first") index = frontier.length - 1;
      else {
        index = 0;
        frontier.forEach((c, i) => {
          const best = frontier[index] as Candidate;
          if (c.score > best.score || (c.score === best.score && c.depth < best.depth)) index = i;
        });
      }
      return frontier.splice(index, 1)[0];
    };

    // Workers wait for the pages in flight when the frontier is empty: those pages' links may
    // refill it. `changed` resolves whenever a page finishes.
    let active = 0;
    let wake: () => void = () => undefined;
    let changed = new Promise<void>((resolve) => (wake = resolve));
    const settled = () => {
      const resolve = wake;
      changed = new Promise<void>((r) => (wake = r));
      resolve();
    };
    const worker = async (): Promise<void> => {
      for (;;) {
        if (signal.aborted || started >= config.maxPages) return;
        const candidate = next();
        if (!candidate) {
          if (active === 0) return;
          await changed;
          continue;
        }
        started++;
        active++;
        try {
          const page = await crawlPage(candidate.url, signal);
          const { links } = page.content;
          data.pages.push({
            url: candidate.url,
            final_url: page.finalUrl,
            status: page.status,
            title: page.content.title,
            path: page.readBy,
            depth: candidate.depth,
            ...(candidate.via ? { via: candidate.via } : {}),
            chars: page.content.markdown.length,
            fetched_at: page.fetchedAt.toISOString(),
          });
          if (candidate.depth < config.maxDepth) {
            const site = siteOf(page.finalUrl);
            for (const link of links) {
              const url = withoutFragment(link.url);
              if (seen.has(url) || siteOf(url) !== site) continue;
              const score = linkScore(url, link.text);
              if (config.strategy === "selective" && score === 0) continue;
              seen.add(url);
              frontier.push({
                url,
                depth: candidate.depth + 1,
                via: candidate.url,
                score,
                order: order++,
              });
            }
          }
        } catch (error) {
          if (parent.aborted) throw error;
          const crawlError = findCrawlError(error);
          const errorClass = crawlError?.errorClass ?? (signal.aborted ? "timeout" : "crawl_error");
          if (crawlError?.errorClass === "robots_disallowed")
            services.events.emit("crawl:refused", { reason: "robots" });
          else if (crawlError?.errorClass === "ssrf_refused")
            services.events.emit("crawl:refused", { reason: "ssrf" });
          services.events.emit("crawl:page", { path: "fetch", outcome: errorClass, bytes: 0 });
          if (crawlError?.transient) firstTransient ??= crawlError;
          data.failures.push({
            url: candidate.url,
            class: errorClass,
            message: coerceError(error).message,
          });
        } finally {
          active--;
          settled();
        }
      }
    };
    // Depth first follows one branch to its end, so it fetches one page at a time.
    const parallel = config.strategy === "depth_first" ? 1 : ROW_PARALLEL;
    await Promise.all(Array.from({ length: parallel }, worker));
    if (signal.aborted && !parent.aborted && frontier.length > 0) data.timed_out = true;
    // Pages in the order they were chosen: seeds as ranked, then followed links.
    const rank = new Map(seeds.map((u, i) => [u, i]));
    data.pages.sort(
      (a, b) => a.depth - b.depth || (rank.get(a.url) ?? 1e9) - (rank.get(b.url) ?? 1e9),
    );
    if (data.pages.length === 0 && firstTransient) {
      const failure = firstTransient;
      return {
        ok: false,
        failure: {
          errorClass: `crawl_${failure.errorClass}`,
          message: `no page could be fetched; the first transient failure, at ${failure.url}: ${failure.message}`,
          permanent: false,
          ...(failure.retryAfterMs === undefined ? {} : { retryAfterMs: failure.retryAfterMs }),
        },
      };
    }
    return { ok: true, values: {}, data };
  };

  return {
    config,
    async run(rows: readonly StageInputRow[], context: StageContext): Promise<StageChunkResult> {
      const results = new Map<string, StageRowResult>();
      await Promise.all(
        rows.map(async (row) => results.set(row.key, await crawlRow(row, context.signal))),
      );
      return {
        rows: results,
        calls: [],
        usage: new Map(),
      };
    },
  };
}
