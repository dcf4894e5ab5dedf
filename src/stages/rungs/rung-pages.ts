import { findCrawlError } from "../../crawl/crawl-error.ts";
import type { JavascriptMode } from "../../crawl/browser-decision.ts";
import type { ReadPage } from "../../crawl/page-reader.ts";
import { coerceError } from "../../core/coerce-error.ts";
import type { CrawlData, CrawledRef } from "../crawl-stage.ts";
import type { ResearchServices } from "../research-services.ts";
import { stageData } from "../stage-data.ts";
import type { StageInputRow } from "../stage-runner.ts";

/** What a rung keeps in its record: the pages it read (the crawl stage's shape, so the next
 * rung and the extraction read them the same way), and what it searched for. */
export interface RungData extends CrawlData {
  queries?: string[];
  /** Columns the rung was asked for: the row's gaps when it climbed. */
  gaps: string[];
  /** Why nothing new was read or asked, when so. */
  note?: string;
}

/** A page a rung wants read, and how. */
export interface RungTarget {
  url: string;
  javascript: JavascriptMode;
  depth: number;
  via?: string;
}

/** Pages one row reads at once; the per-host limit of the page reader still spaces them. */
const ROW_PARALLEL = 4;

/**
 * Every page the row has read so far: its crawl stage's, then the rungs' climbed before this
 * one (their data is handed in under their stage names), without repeats.
 */
export function pagesReadSoFar(
  row: StageInputRow,
  crawlStage: string,
  rungStages: readonly string[],
): CrawledRef[] {
  const seen = new Set<string>();
  const out: CrawledRef[] = [];
  for (const name of [crawlStage, ...rungStages]) {
    if (row.data[name] === undefined) continue;
    for (const page of stageData(row, name, "crawl")?.pages ?? []) {
      if (seen.has(page.url)) continue;
      seen.add(page.url);
      out.push(page);
    }
  }
  return out;
}

/**
 * Reads a rung's pages for one row through the process's one page reader (SSRF guard, cache,
 * robots.txt, politeness), within `timeoutMs`: a page that fails is recorded, not fatal.
 */
export async function readRungPages(
  services: ResearchServices,
  targets: readonly RungTarget[],
  parent: AbortSignal,
  timeoutMs: number,
): Promise<{ pages: CrawledRef[]; read: ReadPage[]; failures: CrawlData["failures"] }> {
  const signal = AbortSignal.any([parent, AbortSignal.timeout(timeoutMs)]);
  const pages: CrawledRef[] = [];
  const read: ReadPage[] = [];
  const failures: CrawlData["failures"] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    for (;;) {
      const target = targets[next++];
      if (!target || signal.aborted) return;
      try {
        const page = await services
          .pages()
          .read(target.url, { javascript: target.javascript, signal });
        services.events.emit("crawl:page", {
          path: page.readBy,
          outcome: "ok",
          bytes: page.readBy === "cache" ? 0 : Buffer.byteLength(page.body),
        });
        read.push(page);
        pages.push({
          url: target.url,
          final_url: page.finalUrl,
          status: page.status,
          title: page.content.title,
          path: page.readBy,
          depth: target.depth,
          ...(target.via ? { via: target.via } : {}),
          chars: page.content.markdown.length,
          fetched_at: page.fetchedAt.toISOString(),
        });
      } catch (error) {
        if (parent.aborted) throw error;
        const crawlError = findCrawlError(error);
        const errorClass = crawlError?.errorClass ?? (signal.aborted ? "timeout" : "crawl_error");
        services.events.emit("crawl:page", { path: "fetch", outcome: errorClass, bytes: 0 });
        if (errorClass === "robots_disallowed")
          services.events.emit("crawl:refused", { reason: "robots" });
        failures.push({ url: target.url, class: errorClass, message: coerceError(error).message });
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(ROW_PARALLEL, targets.length) }, worker));
  const order = new Map(targets.map((t, i) => [t.url, i]));
  pages.sort((a, b) => (order.get(a.url) ?? 0) - (order.get(b.url) ?? 0));
  return { pages, read, failures };
}
