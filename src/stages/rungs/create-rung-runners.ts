import type {
  CrawlStageConfig,
  ExtractStageConfig,
  SearchStageConfig,
  SelectStageConfig,
} from "../../config/config-types.ts";
import { rungStageName, type RungName } from "../../config/escalation-schema.ts";
import type { OutputSpec } from "../../core/output-types.ts";
import { coerceError } from "../../core/coerce-error.ts";
import { getPageContents } from "../../crawl/page-cache.ts";
import type { LlmBackend } from "../../llm/llm-types.ts";
import type { InstalledPipeline } from "../../pipeline/installed-pipeline.ts";
import { createExtractStage } from "../extract-stage.ts";
import { renderQuery } from "../queries-stage.ts";
import type { ResearchServices } from "../research-services.ts";
import { domainOf } from "../select-stage.ts";
import type {
  StageChunkResult,
  StageContext,
  StageInputRow,
  StageRowResult,
  StageRunner,
} from "../stage-runner.ts";
import { rungRounds } from "./rung-rounds.ts";
import { deeperTargets, renderTargets, searchTargets } from "./choose-rung-pages.ts";
import { pagesReadSoFar, readRungPages, type RungData, type RungTarget } from "./rung-pages.ts";

/** Where a rung hands the pages it read to its extraction, in the row's `data`. */
const PAGES = "rung_pages";

/**
 * The escalation ladder's rungs of a research pipeline, one StageRunner each, named
 * `rung:<name>` (their records are checkpointed like any stage's). The stage machine
 * (src/pipeline/climb-ladder.ts) hands a rung only the rows with gaps, each with `wants`: the gap
 * columns. A rung reads new evidence — the same pages rendered, pages one link deeper, pages
 * found by new queries — and extracts only the gap columns from it, with the pipeline's extract
 * stage (`stronger_model`: over every page read, with the next stronger backend). A row for which
 * a rung finds nothing new costs no LLM call.
 */
export function createRungRunners(
  pipeline: InstalledPipeline,
  backends: ReadonlyMap<string, LlmBackend>,
  services: ResearchServices,
): StageRunner[] {
  const ladder = pipeline.escalation;
  if (!ladder) return [];
  const stageOf = <T>(name: string | undefined) =>
    pipeline.stages.find((s) => s.name === name) as T | undefined;
  const extract = stageOf<ExtractStageConfig>(ladder.extractStage) as ExtractStageConfig;
  const crawl = stageOf<CrawlStageConfig>(ladder.crawlStage) as CrawlStageConfig;
  const search = stageOf<SearchStageConfig>(ladder.searchStage);
  const select = pipeline.stages.find((s): s is SelectStageConfig => s.kind === "select");
  const specOf = (name: string) => pipeline.outputs.find((o) => o.name === name) as OutputSpec;
  const pick = (names: readonly string[]) => names.map((n) => backends.get(n) as LlmBackend);
  const extractor = (suffix: string, names: readonly string[]) =>
    createExtractStage(
      {
        ...extract,
        name: `${extract.name}_${suffix}`,
        when: undefined,
        backends: names,
        pagesStage: PAGES,
        searchStage: undefined,
      },
      pipeline.outputs,
      pipeline.inputs,
      pick(names),
      services,
      pipeline,
    );
  const earlierRungs = (rung: RungName) =>
    ladder.rungs.slice(0, ladder.rungs.indexOf(rung)).map(rungStageName);
  const gapsOf = (row: StageInputRow) => [...(row.wants ?? ladder.outputs)];

  /** Extracts the gaps of the rows that read something new, and records what each rung did. */
  const extractNew = async (
    rows: ReadonlyArray<{ row: StageInputRow; data: RungData }>,
    run: StageRunner,
    context: StageContext,
  ): Promise<StageChunkResult> => {
    const ask = rows.filter((r) => r.data.pages.length > 0);
    const result =
      ask.length > 0
        ? await run.run(
            ask.map(({ row, data }) => ({
              key: row.key,
              fields: row.fields,
              data: { [PAGES]: { pages: data.pages, failures: data.failures } },
              wants: gapsOf(row),
            })),
            context,
          )
        : { rows: new Map<string, StageRowResult>(), calls: [], usage: new Map() };
    const out = new Map<string, StageRowResult>();
    for (const { row, data } of rows) {
      const got = result.rows.get(row.key);
      if (!got) out.set(row.key, { ok: true, values: {}, data });
      else if (!got.ok) out.set(row.key, got);
      else out.set(row.key, { ok: true, values: got.values, data: { ...data, extract: got.data } });
    }
    return { ...result, rows: out };
  };

  const pageRung = (
    rung: RungName,
    choose: (row: StageInputRow, context: StageContext) => Promise<RungTarget[]>,
  ): StageRunner => {
    const run = extractor(rung, extract.backends);
    return {
      config: { ...extract, name: rungStageName(rung), outputs: ladder.outputs, when: undefined },
      async run(rows, context) {
        const read = await Promise.all(
          rows.map(async (row) => {
            const targets = await choose(row, context);
            const got = await readRungPages(services, targets, context.signal, crawl.rowTimeoutMs);
            const data: RungData = { pages: got.pages, failures: got.failures, gaps: gapsOf(row) };
            if (targets.length === 0) data.note = "no page left to read for this rung";
            return { row, data, got };
          }),
        );
        return extractNew(read, run, context);
      },
    };
  };

  const renderRung = (): StageRunner => {
    const run = extractor("render", extract.backends);
    return {
      config: {
        ...extract,
        name: rungStageName("render"),
        outputs: ladder.outputs,
        when: undefined,
      },
      async run(rows, context) {
        const targets = rows.map((row) =>
          renderTargets(
            pagesReadSoFar(row, ladder.crawlStage, earlierRungs("render")),
            ladder.maxPages,
          ),
        );
        // What extraction read of these pages so far: a render that changes nothing is no news.
        const before = await getPageContents(
          services.db,
          services.schema,
          targets.flat().map((t) => t.url),
        );
        const read = await Promise.all(
          rows.map(async (row, i) => {
            const got = await readRungPages(
              services,
              targets[i] ?? [],
              context.signal,
              crawl.rowTimeoutMs,
            );
            const changed = got.pages.filter((page) => {
              const page2 = got.read.find((r) => r.finalUrl === page.final_url);
              return (
                page.path === "browser" &&
                page2 !== undefined &&
                page2.content.markdown !== before.get(page.url)?.markdown
              );
            });
            const data: RungData = { pages: changed, failures: got.failures, gaps: gapsOf(row) };
            if ((targets[i] ?? []).length === 0) data.note = "every page was rendered already";
            else if (changed.length === 0) data.note = "rendering changed no page's text";
            return { row, data };
          }),
        );
        return extractNew(read, run, context);
      },
    };
  };

  const searchRung = (): StageRunner => {
    const run = extractor("search_more", extract.backends);
    const client = () => services.search((search as SearchStageConfig).provider);
    return {
      config: {
        ...extract,
        name: rungStageName("search_more"),
        outputs: ladder.outputs,
        when: undefined,
      },
      async run(rows, context) {
        const datas = new Map<string, RungData>(
          rows.map((r) => [r.key, { pages: [], failures: [], gaps: gapsOf(r), queries: [] }]),
        );
        const rounds = rungRounds(rows, pipeline.minConfidence);
        let open = [...rows];
        for (let round = 0; round < ladder.maxRounds && open.length > 0; round++) {
          const read = await Promise.all(
            open.map(async (row) => {
              const data = datas.get(row.key) as RungData;
              const missing = rounds.missing(row, gapsOf(row));
              const queries = [
                ...new Set(
                  missing.flatMap((g) =>
                    ladder.queryTemplates.map((t) =>
                      renderQuery(t, { ...row.fields, column: columnWords(specOf(g), round) }),
                    ),
                  ),
                ),
              ].filter((q) => q !== "" && !data.queries?.includes(q));
              data.queries = [...(data.queries ?? []), ...queries];
              const results: Array<{ url: string }> = [];
              for (const query of queries) {
                try {
                  results.push(
                    ...(await client().search(query, {
                      limit: (search as SearchStageConfig).resultsPerQuery,
                      signal: context.signal,
                    })),
                  );
                } catch (error) {
                  if (context.signal.aborted) throw error;
                  data.failures.push({
                    url: `search:${query}`,
                    class: "search_error",
                    message: coerceError(error).message,
                  });
                }
              }
              const domain = select?.domainInput
                ? domainOf(row.fields[select.domainInput])
                : undefined;
              const targets = searchTargets(
                results,
                [
                  ...pagesReadSoFar(row, ladder.crawlStage, earlierRungs("search_more")),
                  ...data.pages,
                ],
                domain,
                crawl,
                ladder.maxPages,
              );
              const got = await readRungPages(
                services,
                targets,
                context.signal,
                crawl.rowTimeoutMs,
              );
              data.failures.push(...got.failures);
              data.pages.push(...got.pages);
              return {
                row: { ...row, wants: missing },
                data: { ...data, pages: got.pages },
              };
            }),
          );
          rounds.add(await extractNew(read, run, context));
          open = open.filter(
            (row) => !rounds.failed(row.key) && rounds.missing(row, gapsOf(row)).length > 0,
          );
        }
        return rounds.result(rows, (row) => {
          const data = datas.get(row.key) as RungData;
          if (data.queries?.length === 0) data.note = "no new query to ask";
          return data;
        });
      },
    };
  };

  const strongerRung = (): StageRunner => {
    const runs = ladder.backends.map((name) => extractor(`stronger_${name}`, [name]));
    return {
      config: {
        ...extract,
        name: rungStageName("stronger_model"),
        outputs: ladder.outputs,
        when: undefined,
      },
      async run(rows, context) {
        const rounds = rungRounds(rows, pipeline.minConfidence);
        const pagesOf = (row: StageInputRow) =>
          pagesReadSoFar(row, ladder.crawlStage, earlierRungs("stronger_model"));
        for (const run of runs) {
          // The next backend only for rows the last one left with gaps.
          const open = rows
            .filter((row) => !rounds.failed(row.key))
            .map((row) => ({
              row: { ...row, wants: rounds.missing(row, gapsOf(row)) },
              data: { pages: pagesOf(row), failures: [], gaps: gapsOf(row) } satisfies RungData,
            }))
            .filter((r) => r.row.wants.length > 0);
          if (open.length === 0) break;
          rounds.add(await extractNew(open, run, context));
        }
        return rounds.result(
          rows,
          (row) => ({ pages: [], failures: [], gaps: gapsOf(row) }) satisfies RungData,
        );
      },
    };
  };

  return ladder.rungs.map((rung) => {
    switch (rung) {
      case "render":
        return renderRung();
      case "deeper":
        return pageRung("deeper", (row, context) =>
          deeperTargets(
            services,
            row,
            pagesReadSoFar(row, ladder.crawlStage, earlierRungs("deeper")),
            gapsOf(row).map(specOf),
            crawl,
            select,
            ladder.maxPages,
            context.signal,
          ),
        );
      case "search_more":
        return searchRung();
      case "stronger_model":
        return strongerRung();
    }
  });
}

/** The words a query uses for a gap column: its name first, its description in a later round. */
function columnWords(spec: OutputSpec, round: number): string {
  const name = spec.name.replace(/_/g, " ");
  return round === 0 || !spec.description ? name : spec.description;
}
