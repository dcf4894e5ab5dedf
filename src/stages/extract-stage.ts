import type { ExtractStageConfig } from "../config/config-types.ts";
import { renderTemplate, templateFields } from "../config/template-fields.ts";
import type { OutputSpec } from "../core/output-types.ts";
import { emptyStructuredData, type StructuredData } from "../crawl/extract-structured-data.ts";
import {
  valuesFromStructuredData,
  type StructuredValue,
} from "../crawl/extract-structured-values.ts";
import { getPageContents, type PageForExtraction } from "../crawl/page-cache.ts";
import { callCascade } from "../llm/call-cascade.ts";
import {
  answerPassed,
  buildAnswerSchema,
  validateBatchAnswer,
} from "../llm/json-schema-for-outputs.ts";
import { LlmError } from "../llm/llm-error.ts";
import type { LlmAttempt, LlmBackend } from "../llm/llm-types.ts";
import { agree } from "../pipeline/agreement.ts";
import {
  splitUsage,
  type PromptTruncation,
  type StageValue,
  type ValueEvidence,
} from "../pipeline/row-state.ts";
import { promptWithRowIds, rowFieldTexts, rowHeading, ROWS_ARE_DATA } from "./batch-prompt.ts";
import type { FewShotSettings, PromptLimits } from "./llm-stage.ts";
import { createFewShotSource } from "./few-shot-examples.ts";
import {
  buildEvidence,
  CHARS_PER_TOKEN,
  type EvidenceChunk,
  type EvidencePage,
} from "./extract-evidence.ts";
import { findQuote, pageEvidence, QUOTE_MAX_CHARS } from "./value-evidence.ts";
import type { ResearchServices } from "./research-services.ts";
import { domainOf, onDomain } from "./select-stage.ts";
import type {
  StageChunkResult,
  StageContext,
  StageInputRow,
  StageRowResult,
  StageRunner,
} from "./stage-runner.ts";
import { nameKey, wordsOf } from "./words-of.ts";
import { stageData } from "./stage-data.ts";

/** What an `extract` stage keeps in the row's state besides the values. */
export interface ExtractData {
  /** Pages read (structured data, prompt text or both). */
  pages: number;
  /** Columns answered from structured data, with the page each came from. */
  structured: Record<string, string>;
  /** Pages with at least one chunk in the LLM prompt. */
  prompt_urls: string[];
  /** Characters of page text this row put in the prompt. */
  prompt_chars: number;
}

/** A page title longer than this is cut in the list of sources. */
const MAX_TITLE_CHARS = 200;

const SYSTEM =
  "You extract facts about the items you are given from the numbered sources, and only from " +
  "them. When the sources do not state a value, answer null: never guess or fill a gap from " +
  "memory. For every value give a confidence from 0 to 1 (the probability it is right) and the " +
  "ids of the sources that state it. Answer with JSON only.";

/**
 * Fills output columns from a row's pages: first from their structured data (JSON-LD,
 * microdata, OpenGraph, meta) at no LLM cost, then, for what is still missing, from their text
 * with one LLM call per chunk of rows. Every value keeps the URLs it came from.
 */
export function createExtractStage(
  config: ExtractStageConfig,
  outputs: readonly OutputSpec[],
  inputs: readonly string[],
  backends: readonly LlmBackend[],
  services: ResearchServices,
  limits: PromptLimits,
  fewShot?: FewShotSettings,
): StageRunner {
  const specs = config.outputs.map((name) => outputs.find((o) => o.name === name) as OutputSpec);
  // A prompt naming row fields is rendered in each row's item; one without is said once.
  const promptFields = templateFields(config.prompt ?? "");
  const perRowPrompt = config.prompt !== undefined && promptFields.length > 0;
  const rowFields = [...inputs, ...promptFields];
  // An example is written as an item is: its known inputs (its sources are not shown).
  const examples =
    fewShot &&
    createFewShotSource({
      ...fewShot,
      renderItem: (fields) => {
        const texts = rowFieldTexts(fields, inputs, limits.maxRowInputChars).texts;
        return inputs
          .filter((c) => fields[c] !== null && fields[c] !== undefined)
          .map((c) => `${c}: ${texts[c]}`)
          .join("\n");
      },
    });

  const pagesOf = (row: StageInputRow): string[] => {
    const crawl = config.pagesStage ? stageData(row, config.pagesStage, "crawl") : undefined;
    return crawl?.pages.map((p) => p.url) ?? [];
  };

  return {
    config,
    async run(rows: readonly StageInputRow[], context: StageContext): Promise<StageChunkResult> {
      const contents = await getPageContents(
        services.db,
        services.schema,
        rows.flatMap((row) => pagesOf(row)),
      );
      const values = new Map<string, Record<string, StageValue>>();
      const datas = new Map<string, ExtractData>();
      const evidencePages = new Map<string, EvidencePage[]>();
      const missing = new Map<string, OutputSpec[]>();
      const pagesRead = new Map<string, Map<string, PageForExtraction>>();

      for (const row of rows) {
        const wanted = (spec: OutputSpec) =>
          row.wants === undefined || row.wants.includes(spec.name);
        const pages = pagesOf(row)
          .map((url) => contents.get(url))
          .filter((p): p is PageForExtraction => p !== undefined);
        const found: Record<string, StageValue> = {};
        const structuredFrom: Record<string, string> = {};
        if (config.structuredData) {
          // Every page's reading of a column counts: pages that agree raise its confidence,
          // pages that disagree lower it (src/pipeline/agreement.ts).
          const readings = new Map<string, StageValue[]>();
          for (const page of pages) {
            if (!pageIsAbout(page, row, inputs)) continue;
            const answers = valuesFromStructuredData(asStructured(page.structured), specs);
            for (const [column, answer] of Object.entries(answers)) {
              if (row.wants && !row.wants.includes(column)) continue;
              const list = readings.get(column) ?? [];
              list.push({
                value: answer.value,
                confidence: answer.confidence,
                sources: [page.finalUrl],
                origin: answer.origin,
                quote: structuredQuote(answer),
                ...pageEvidence(page),
              });
              readings.set(column, list);
            }
          }
          for (const spec of specs) {
            const agreed = agree(spec.type, readings.get(spec.name) ?? []);
            if (!agreed) continue;
            found[spec.name] = {
              ...agreed.best,
              value: agreed.value,
              confidence: agreed.confidence,
              sources: agreed.sources,
              ...(agreed.conflicts.length > 0 ? { conflicts: agreed.conflicts } : {}),
            };
            structuredFrom[spec.name] = agreed.sources[0] as string;
          }
        }
        values.set(row.key, found);
        pagesRead.set(row.key, new Map(pages.map((p) => [p.finalUrl, p])));
        const evidence: EvidencePage[] = pages.map((p) => ({
          url: p.finalUrl,
          title: p.title,
          markdown: p.markdown,
        }));
        if (evidence.length === 0 && config.searchStage) {
          // No page could be read: the search snippets are the only evidence there is.
          const search = stageData(row, config.searchStage, "search");
          for (const r of search?.results.slice(0, 8) ?? [])
            evidence.push({ url: r.url, title: r.title, markdown: `${r.title}\n\n${r.snippet}` });
        }
        evidencePages.set(row.key, evidence);
        missing.set(
          row.key,
          specs.filter((s) => !found[s.name] && wanted(s)),
        );
        datas.set(row.key, {
          pages: pages.length,
          structured: structuredFrom,
          prompt_urls: [],
          prompt_chars: 0,
        });
      }

      const askRows = rows.filter(
        (r) => (missing.get(r.key)?.length ?? 0) > 0 && (evidencePages.get(r.key)?.length ?? 0) > 0,
      );
      let calls: LlmAttempt[] = [];
      const truncated = new Map<string, PromptTruncation>();
      let backend: string | undefined;
      let model: string | undefined;
      const failures = new Map<string, StageRowResult>();
      if (backends.length > 0 && askRows.length > 0) {
        const wanted = specs.filter((s) => askRows.some((r) => missing.get(r.key)?.includes(s)));
        const { chunks, rows: rowEvidence } = buildEvidence(
          askRows.map((row) => {
            const want = missing.get(row.key) ?? [];
            return {
              key: row.key,
              pages: evidencePages.get(row.key) ?? [],
              nameWords: inputs.flatMap((c) => wordsOf(row.fields[c])),
              fieldWords: want.flatMap((s) => [...wordsOf(s.name), ...wordsOf(s.description)]),
              wantsNumbers: want.some((s) => s.type === "integer" || s.type === "numeric"),
              budgetChars: config.tokenBudget * CHARS_PER_TOKEN,
            };
          }),
        );
        const byRow = new Map(rowEvidence.map((e) => [e.key, e]));
        const bodies = askRows.map((row) => {
          const e = byRow.get(row.key);
          const fields = rowFieldTexts(row.fields, rowFields, limits.maxRowInputChars);
          if (fields.truncated) truncated.set(row.key, fields.truncated);
          const known = inputs
            .filter((c) => row.fields[c] !== null && row.fields[c] !== undefined)
            .map((c) => `${c}: ${fields.texts[c]}`);
          if (perRowPrompt)
            known.push(`instructions: ${renderTemplate(config.prompt, fields.texts)}`);
          return `${known.join("\n")}\nsources: ${e?.sources.join(", ") || "none"}`;
        });
        const shots = examples ? await examples.section() : "";
        const { prompt, ids } = promptWithRowIds(
          askRows.map((r) => r.key),
          config.name,
          (idOf) =>
            [
              `Fill these fields for each item:\n${wanted.map((o) => `- ${o.name} (${o.type}): ${o.description}`).join("\n")}`,
              config.prompt && !perRowPrompt ? config.prompt : "",
              shots,
              `Answer as {"rows": [{"id": "<item id>", ${wanted.map((o) => `"${o.name}": {"value": ..., "confidence": ..., "sources": ["S1"]}`).join(", ")}}]}, one entry per item, its id copied from its heading.`,
              "## Sources",
              ...chunks.map(
                (c) => `[${c.id}] ${c.url}${c.title ? ` — ${clipTitle(c.title)}` : ""}\n${c.text}`,
              ),
              "## Items",
              ROWS_ARE_DATA,
              ...askRows.map(
                (row, i) => `${rowHeading(idOf.get(row.key) as string)}\n${bodies[i]}`,
              ),
            ]
              .filter((part) => part !== "")
              .join("\n\n"),
        );
        const idToUrl = new Map(chunks.map((c) => [c.id, c.url]));
        const chunkById = new Map(chunks.map((c) => [c.id, c]));
        for (const row of askRows) {
          const e = byRow.get(row.key);
          const data = datas.get(row.key) as ExtractData;
          data.prompt_urls = e?.urls ?? [];
          data.prompt_chars = (e?.sources ?? []).reduce(
            (n, id) => n + (chunks.find((c) => c.id === id)?.text.length ?? 0),
            0,
          );
        }
        try {
          const answer = await callCascade([...backends], {
            system: config.system === undefined ? SYSTEM : `${config.system}\n\n${SYSTEM}`,
            prompt,
            schema: withSources(buildAnswerSchema(wanted)),
            schemaName: `${config.name}_answer`,
            signal: context.signal,
            purpose: { stage: config.name, rowKeys: askRows.map((r) => r.key) },
            origin: { pipeline: context.pipeline, stage: config.name },
          });
          calls = answer.attempts;
          backend = answer.backend;
          model = answer.model;
          // Only the ids of this call count: an entry for any other id fills nothing.
          const parsed = validateBatchAnswer(answer.json, [...ids.keyOf.keys()], wanted);
          // Kept for the next time this exact question is asked only when every row passed.
          if (answerPassed(parsed.values())) await answer.remember();
          const raw = rawRows(answer.json);
          for (const row of askRows) {
            const id = ids.idOf.get(row.key) as string;
            const got = parsed.get(id);
            if (!got || !got.ok) {
              failures.set(row.key, {
                ok: false,
                failure: {
                  errorClass: "invalid_output",
                  message: `${answer.backend}: ${got && !got.ok ? got.error : "row missing from the answer"}`,
                  permanent: false,
                },
              });
              continue;
            }
            const e = byRow.get(row.key);
            const allowed = new Set(e?.sources ?? []);
            const found = values.get(row.key) as Record<string, StageValue>;
            for (const spec of missing.get(row.key) ?? []) {
              const v = got.values[spec.name];
              if (!v) continue;
              const cited = citedIds(raw.get(id), spec.name, allowed).map(
                (id) => idToUrl.get(id) as string,
              );
              const uncited = v.value !== null && cited.length === 0;
              found[spec.name] = {
                value: v.value,
                // A value the model cannot trace to a source it was given is worth less.
                confidence: uncited ? Math.round(v.confidence * 0.5 * 1000) / 1000 : v.confidence,
                sources: uncited ? (e?.urls ?? []) : [...new Set(cited)],
                origin: "llm",
                ...evidenceOfAnswer(
                  spec,
                  v.value,
                  citedIds(raw.get(id), spec.name, allowed),
                  e?.sources ?? [],
                  chunkById,
                  pagesRead.get(row.key),
                ),
                ...(v.error
                  ? { error: v.error }
                  : v.value === null
                    ? { error: "the sources do not state it (LLM answered null)" }
                    : {}),
              };
            }
          }
        } catch (error) {
          if (!(error instanceof LlmError)) throw error;
          calls = error.attempts;
          for (const row of askRows)
            failures.set(row.key, {
              ok: false,
              failure: {
                errorClass: error.errorClass,
                message: error.message,
                permanent: error.permanent,
                ...(error.retryAfterMs === undefined ? {} : { retryAfterMs: error.retryAfterMs }),
                ...(error.waitingFor === undefined ? {} : { waitingFor: error.waitingFor }),
              },
            });
        }
      }

      const results = new Map<string, StageRowResult>();
      for (const row of rows) {
        const failed = failures.get(row.key);
        if (failed) {
          results.set(row.key, failed);
          continue;
        }
        const found = values.get(row.key) as Record<string, StageValue>;
        const data = datas.get(row.key) as ExtractData;
        for (const spec of specs) {
          if (found[spec.name] || (row.wants && !row.wants.includes(spec.name))) continue;
          found[spec.name] = {
            value: null,
            confidence: 0,
            error:
              data.pages === 0 && (evidencePages.get(row.key)?.length ?? 0) === 0
                ? "no page or search result to read it from"
                : backends.length === 0
                  ? `not in the pages' structured data, and stage ${config.name} has no LLM backend to read their text`
                  : "not found in the pages read",
          };
        }
        results.set(row.key, { ok: true, values: found, data });
      }
      return {
        rows: results,
        calls,
        // The calls asked about askRows only: rows answered from structured data spent nothing.
        usage: splitUsage(
          calls,
          askRows.map((r) => r.key),
        ),
        truncated,
        ...(backend ? { backend } : {}),
        ...(model ? { model } : {}),
      };
    },
  };
}

/**
 * Structured data describes the page's own subject, so it answers for the row only when that
 * subject is the row. With a domain among the row's inputs, the page must be on that domain (or
 * name it in its path, as a directory's `/company/acme.com` does): "Granite Peak Capital" must
 * not take the numbers of "Granite Peak Capital Partners". Without one, the page's title or first
 * entity must carry exactly the row's name, legal forms and page words aside.
 */
function pageIsAbout(
  page: PageForExtraction,
  row: StageInputRow,
  inputs: readonly string[],
): boolean {
  const domains = inputs
    .map((c) => domainOf(row.fields[c]))
    .filter((d): d is string => d !== undefined && d.includes("."));
  if (domains.length > 0) return domains.some((d) => onDomain(page.finalUrl, d));
  const structured = asStructured(page.structured);
  // The page's first named entity is its subject; later ones (a publisher, a partner, the rest
  // of a directory) are not.
  const first = [
    ...structured.jsonLd.map((o) => o["name"]),
    ...structured.microdata.map((m) => {
      const name = m.properties["name"];
      return Array.isArray(name) ? name[0] : name;
    }),
  ].find((n): n is string => typeof n === "string");
  const names = [page.title, ...(first ? [first] : [])].map(nameKey);
  return inputs.some((column) => {
    const value = row.fields[column];
    if (typeof value !== "string") return false;
    const key = nameKey(value);
    return key !== "" && names.includes(key);
  });
}

/** The start of a page title on one line; only that start of a long title is read. */
function clipTitle(title: string): string {
  if (title.length <= MAX_TITLE_CHARS) return title.replace(/\s+/g, " ");
  let end = MAX_TITLE_CHARS;
  // Cutting between the halves of a surrogate pair would leave half a character.
  if (/[\uD800-\uDBFF]/.test(title[end - 1] ?? "")) end--;
  return `${title.slice(0, end).replace(/\s+/g, " ")}…`;
}

function asStructured(value: unknown): StructuredData {
  if (value === null || typeof value !== "object") return emptyStructuredData();
  return { ...emptyStructuredData(), ...(value as Partial<StructuredData>) };
}

/** Adds `sources` (source ids) to every value object of a batch answer schema. */
function withSources(schema: Record<string, unknown>): Record<string, unknown> {
  const copy = structuredClone(schema) as {
    properties: { rows: { items: { properties: Record<string, Record<string, unknown>> } } };
  };
  for (const [name, field] of Object.entries(copy.properties.rows.items.properties)) {
    if (name === "id") continue;
    const properties = field["properties"] as Record<string, unknown>;
    properties["sources"] = {
      type: "array",
      items: { type: "string" },
      description: "Ids of the sources stating the value, e.g. S1.",
    };
    field["required"] = [...(field["required"] as string[]), "sources"];
  }
  return copy;
}

function rawRows(json: unknown): Map<string, Record<string, unknown>> {
  const out = new Map<string, Record<string, unknown>>();
  const rows = (json as { rows?: unknown })?.rows;
  if (!Array.isArray(rows)) return out;
  for (const entry of rows as Array<Record<string, unknown>>) {
    if (entry && (typeof entry.id === "string" || typeof entry.id === "number"))
      out.set(String(entry.id), entry);
  }
  return out;
}

/** The source ids the model cited for a column, among those the row was given. */
function citedIds(
  row: Record<string, unknown> | undefined,
  column: string,
  allowed: ReadonlySet<string>,
): string[] {
  const field = row?.[column] as { sources?: unknown } | undefined;
  return Array.isArray(field?.sources)
    ? field.sources.filter((s): s is string => typeof s === "string" && allowed.has(s))
    : [];
}

/**
 * The passage stating a model's value, looked for in the passages it cited, then in the row's
 * other passages; the fetch time and text hash of the page it is on (else of the first cited
 * page: a paraphrase has no passage, but its page still was read at a time).
 */
function evidenceOfAnswer(
  spec: OutputSpec,
  value: unknown,
  cited: readonly string[],
  rowSources: readonly string[],
  chunkById: ReadonlyMap<string, EvidenceChunk>,
  pages: ReadonlyMap<string, PageForExtraction> | undefined,
): ValueEvidence {
  if (value === null || value === undefined) return {};
  const order = [...new Set([...cited, ...rowSources])];
  const passages = order
    .map((id) => chunkById.get(id))
    .filter((c): c is EvidenceChunk => c !== undefined)
    .map((c) => ({ url: c.url, text: c.text }));
  const found = findQuote(spec.type, value, passages);
  const url = found?.url ?? chunkById.get(cited[0] ?? "")?.url;
  return {
    ...(found ? { quote: found.quote } : {}),
    ...pageEvidence(url === undefined ? undefined : pages?.get(url)),
  };
}

/** What a structured-data value says, as a reviewer would look for it in the page's source. */
function structuredQuote(answer: StructuredValue): string {
  const where = answer.schemaType ? `${answer.schemaType} ${answer.path}` : answer.path;
  const text = `${answer.origin} ${where}: ${JSON.stringify(answer.value)}`;
  return text.length <= QUOTE_MAX_CHARS ? text : `${text.slice(0, QUOTE_MAX_CHARS - 1)}…`;
}
