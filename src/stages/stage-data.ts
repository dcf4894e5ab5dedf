import { z } from "zod";
import type { StageConfig } from "../config/config-types.ts";
import type { CrawlData } from "./crawl-stage.ts";
import type { QueriesData } from "./queries-stage.ts";
import type { SearchData } from "./search-stage.ts";
import type { SelectData } from "./select-stage.ts";
import type { StageInputRow, StageRowResult } from "./stage-runner.ts";

/**
 * The data research stages keep in `enrichment_state` and later stages read back. It comes from
 * the database, so it may have been written by an older Gleaner, or edited by hand: it is checked
 * against one schema per stage kind before a stage uses it, never cast.
 *
 * A row whose stored data does not fit fails with `stage_data_invalid`, permanently, naming the
 * stage: retrying cannot change stored data, and re-running the earlier stage silently could
 * spend LLM and search calls a user did not expect. Resetting the row (docs/configuration.md,
 * "Reprocessing a row") runs its stages again.
 */

const failureEntry = z.looseObject({ class: z.string(), message: z.string() });

const queriesData = z.looseObject({
  queries: z.array(
    z.looseObject({
      query: z.string(),
      category: z.string(),
      priority: z.number(),
      origin: z.enum(["template", "llm"]),
    }),
  ),
  llm_error: z.string().optional(),
}) satisfies z.ZodType<QueriesData>;

const searchData = z.looseObject({
  results: z.array(
    z.looseObject({
      url: z.string(),
      title: z.string(),
      snippet: z.string(),
      rank: z.number(),
      queries: z.array(z.number()),
      provider: z.string(),
    }),
  ),
  errors: z.array(failureEntry.extend({ query: z.string() })).optional(),
}) satisfies z.ZodType<SearchData>;

const selectData = z.looseObject({
  urls: z.array(z.looseObject({ url: z.string(), score: z.number(), reason: z.string() })),
  llm_error: z.string().optional(),
}) satisfies z.ZodType<SelectData>;

const crawlData = z.looseObject({
  pages: z.array(
    z.looseObject({
      url: z.string(),
      final_url: z.string(),
      status: z.number(),
      title: z.string(),
      path: z.enum(["fetch", "browser", "cache"]),
      depth: z.number(),
      via: z.string().optional(),
      chars: z.number(),
      fetched_at: z.string(),
    }),
  ),
  failures: z.array(failureEntry.extend({ url: z.string() })),
  timed_out: z.boolean().optional(),
}) satisfies z.ZodType<CrawlData>;

/** The schema of each stage kind whose data other stages read. */
const STAGE_DATA = {
  queries: queriesData,
  search: searchData,
  select: selectData,
  crawl: crawlData,
} as const;

export type ReadableKind = keyof typeof STAGE_DATA;
export type StageDataOf<K extends ReadableKind> = z.output<(typeof STAGE_DATA)[K]>;

export class StageDataInvalidError extends Error {
  readonly stage: string;
  constructor(stage: string, kind: string, why: string) {
    super(
      `the data stage "${stage}" (${kind}) stored for this row does not have the shape this Gleaner reads (${why}); it was probably written by another version: reset the row to run its stages again`,
    );
    this.name = "StageDataInvalidError";
    this.stage = stage;
  }
}

/** The stored data of `stage` (a `kind` stage) for this row, checked; undefined when it has none. */
export function stageData<K extends ReadableKind>(
  row: StageInputRow,
  stage: string,
  kind: K,
): StageDataOf<K> | undefined {
  const stored = row.data[stage];
  if (stored === undefined || stored === null) return undefined;
  const parsed = STAGE_DATA[kind].safeParse(stored);
  if (!parsed.success) throw new StageDataInvalidError(stage, kind, describe(parsed.error));
  return parsed.data as StageDataOf<K>;
}

/** The URLs a select stage chose or, read from a search stage, the URLs it found. */
export function stageUrls(row: StageInputRow, stage: string): string[] {
  const stored = row.data[stage];
  const fromSelect = typeof stored === "object" && stored !== null && "urls" in stored;
  return fromSelect
    ? (stageData(row, stage, "select")?.urls.map((u) => u.url) ?? [])
    : (stageData(row, stage, "search")?.results.map((r) => r.url) ?? []);
}

/** The stages whose data a stage reads, with the kind that wrote it (undefined: not checked). */
function readsOf(stage: StageConfig): string[] {
  switch (stage.kind) {
    case "search":
      return [stage.queriesStage];
    case "select":
      return [stage.searchStage];
    case "crawl":
      return stage.urlsStage ? [stage.urlsStage] : [];
    case "extract":
      return [stage.pagesStage, stage.searchStage].filter((s): s is string => s !== undefined);
    default:
      return [];
  }
}

/**
 * Rows whose stored data of an earlier stage `stage` reads is malformed, each with its failure:
 * the runner leaves them out of the stage's call and settles them as failed.
 */
export function invalidStageData(
  stage: StageConfig,
  stages: readonly StageConfig[],
  rows: readonly StageInputRow[],
): Map<string, StageRowResult> {
  const invalid = new Map<string, StageRowResult>();
  const reads = readsOf(stage);
  for (const row of rows) {
    for (const name of reads) {
      const kind = stages.find((s) => s.name === name)?.kind;
      if (kind === undefined || !(kind in STAGE_DATA)) continue;
      try {
        stageData(row, name, kind as ReadableKind);
      } catch (error) {
        if (!(error instanceof StageDataInvalidError)) throw error;
        invalid.set(row.key, {
          ok: false,
          failure: { errorClass: "stage_data_invalid", message: error.message, permanent: true },
        });
        break;
      }
    }
  }
  return invalid;
}

function describe(error: z.ZodError): string {
  const issue = error.issues[0];
  if (!issue) return "unreadable";
  const at = issue.path.length > 0 ? issue.path.join(".") : "the top";
  return `at ${at}: ${issue.message}`;
}
