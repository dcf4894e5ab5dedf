import { CHATTER_PAGE_WORDS } from "./link-score.ts";
import type { SelectStageConfig } from "../config/config-types.ts";
import { callCascade } from "../llm/call-cascade.ts";
import { LlmError } from "../llm/llm-error.ts";
import type { OutputSpec } from "../core/output-types.ts";
import type { LlmAttempt, LlmBackend } from "../llm/llm-types.ts";
import { splitUsage } from "../pipeline/row-state.ts";
import type { FoundResult } from "./search-stage.ts";
import type {
  StageChunkResult,
  StageContext,
  StageInputRow,
  StageRowResult,
  StageRunner,
} from "./stage-runner.ts";
import { nameKey, wordsOf } from "./words-of.ts";
import { stageData } from "./stage-data.ts";

/** What a `select` stage keeps in the row's state: the URLs to crawl, best first. */
export interface SelectData {
  urls: SelectedUrl[];
  /** The LLM ranking failed: the keyword ranking was kept. */
  llm_error?: string;
}

export interface SelectedUrl {
  url: string;
  score: number;
  /** Why it ranked where it did: `own domain`, `name in title`, `rank 2`… */
  reason: string;
}

/** Words of a page title or address that say it describes the organisation. */
const FACT_PAGE_WORDS = [
  "about",
  "company",
  "profile",
  "facts",
  "overview",
  "who",
  "history",
  // A register or directory entry states the facts of the one organisation it is titled with.
  "register",
  "registry",
  "directory",
  "handelsregister",
];

/**
 * On the row's domain: its host or a subdomain, or an address naming the domain as a path
 * segment (a directory's `/company/acme.com`, a mirror's `/acme.com/about.html`).
 */
export function onDomain(url: string, domain: string): boolean {
  try {
    const u = new URL(url);
    const host = u.hostname.toLowerCase().replace(/^www\./, "");
    if (host === domain || host.endsWith(`.${domain}`)) return true;
    const segments = u.pathname.toLowerCase().split("/");
    return segments.includes(domain) || segments.includes(`www.${domain}`);
  } catch {
    return false;
  }
}

function nameShare(r: FoundResult, nameWords: ReadonlySet<string>): number {
  const text = new Set([...wordsOf(r.title), ...wordsOf(r.snippet), ...wordsOf(r.url)]);
  return [...nameWords].filter((w) => text.has(w)).length / nameWords.size;
}

/** The host of a domain-ish input: `https://www.acme.com/x` and `acme.com` both give acme.com. */
export function domainOf(value: unknown): string | undefined {
  if (typeof value !== "string" || value.trim() === "") return undefined;
  const text = value.trim().toLowerCase();
  try {
    const host = new URL(/^[a-z]+:\/\//.test(text) ? text : `http://${text}`).hostname;
    return host.replace(/^www\./, "") || undefined;
  } catch {
    return undefined;
  }
}

/**
 * Chooses up to max_urls URLs per row from its search results: the row's own domain first, then
 * pages whose title and address name the row, then the keywords and the outputs' own words, then
 * the search rank. Optionally an LLM re-orders the best candidates.
 */
export function createSelectStage(
  config: SelectStageConfig,
  inputs: readonly string[],
  outputs: readonly OutputSpec[],
  backends: readonly LlmBackend[],
): StageRunner {
  const topicWords = new Set([
    ...config.keywords.flatMap((k) => wordsOf(k)),
    ...outputs.flatMap((o) => [...wordsOf(o.name), ...wordsOf(o.description)]),
  ]);
  const factWords = new Set(FACT_PAGE_WORDS);
  // Words that say a page is not about the row itself (news, job ads, legal pages).
  const chatterWords = new Set(CHATTER_PAGE_WORDS);
  const nameInputs = inputs.filter((c) => c !== config.domainInput);

  const rank = (row: StageInputRow, results: readonly FoundResult[]): SelectedUrl[] => {
    const domain = config.domainInput ? domainOf(row.fields[config.domainInput]) : undefined;
    const nameWords = new Set(nameInputs.flatMap((c) => wordsOf(row.fields[c])));
    const nameKeys = new Set(
      nameInputs
        .map((c) => row.fields[c])
        .filter((v): v is string => typeof v === "string")
        .map(nameKey),
    );
    const scored = results.map((r) => {
      const reasons: string[] = [];
      let score = 0;
      if (!URL.canParse(r.url))
        return { url: r.url, score: -1, reason: "not a URL", own: false, named: false };
      const own = domain !== undefined && onDomain(r.url, domain);
      if (own) {
        score += 10;
        reasons.push("own domain");
      }
      // Another site's page titled with a longer name ("Acme Rocketry Partners" for "Acme
      // Rocketry") is about someone else.
      // A register's or directory's title names the row beside its own name ("Acme Rocketry
      // GmbH | Company Register"): the row's name in one part of it is the row.
      const titleWords = new Set(wordsOf(r.title));
      const similar =
        !own &&
        nameWords.size > 0 &&
        [...nameWords].every((w) => titleWords.has(w)) &&
        !titleParts(r.title).some((part) => nameKeys.has(nameKey(part)));
      if (similar) {
        score -= 4;
        reasons.push("a similar name");
      }
      // What a page is, by its title and address: a profile, or news and job ads.
      const label = new Set([...wordsOf(r.title), ...wordsOf(new URL(r.url).pathname)]);
      if ([...factWords].some((w) => label.has(w))) {
        score += 2;
        reasons.push("a profile page");
      } else if ([...chatterWords].some((w) => label.has(w))) {
        score -= 2;
      }
      if (nameWords.size > 0) {
        const where = new Set([...wordsOf(r.title), ...wordsOf(decodeURI(r.url))]);
        const hits = [...nameWords].filter((w) => where.has(w)).length;
        const share = hits / nameWords.size;
        score += 6 * share;
        if (share === 1) reasons.push("name in title or address");
        const inSnippet = new Set(wordsOf(r.snippet));
        score += 2 * ([...nameWords].filter((w) => inSnippet.has(w)).length / nameWords.size);
      }
      const text = new Set([...wordsOf(r.title), ...wordsOf(r.snippet), ...wordsOf(r.url)]);
      const topical = [...topicWords].filter((w) => text.has(w)).length;
      score += Math.min(3, topical * 0.5);
      if (topical > 0) reasons.push(`${topical} topic words`);
      score += 2 / r.rank + 0.5 * (r.queries.length - 1);
      reasons.push(`rank ${r.rank}`);
      return {
        url: r.url,
        score: Math.round(score * 100) / 100,
        reason: reasons.join(", "),
        own,
        named: nameWords.size > 0 && !similar && nameShare(r, nameWords) === 1,
      };
    });
    const ranked = scored.filter((s) => s.score >= 0).sort((a, b) => b.score - a.score);
    const wanted = config.llm ? config.maxUrls * 3 : config.maxUrls;
    // A second opinion: when other sites name the row, one place at least goes to the best of
    // them, so a row whose own site states nothing (or states it wrongly) still has evidence.
    const other = ranked.find((s) => !s.own && s.named);
    let picked = ranked.slice(0, wanted);
    if (config.maxUrls > 1 && other && !picked.includes(other)) {
      picked = [...picked.slice(0, wanted - 1), other];
    }
    return picked.map(({ url, score, reason }) => ({ url, score, reason }));
  };

  return {
    config,
    async run(rows: readonly StageInputRow[], context: StageContext): Promise<StageChunkResult> {
      const ranked = new Map<string, SelectedUrl[]>();
      for (const row of rows) {
        const search = stageData(row, config.searchStage, "search");
        ranked.set(row.key, rank(row, search?.results ?? []));
      }
      let calls: LlmAttempt[] = [];
      let llmError: string | undefined;
      if (config.llm && [...ranked.values()].some((r) => r.length > config.maxUrls)) {
        try {
          const answer = await callCascade([...backends], {
            system: "You choose which web pages most likely state facts about an item. JSON only.",
            prompt: [
              `Facts wanted:\n${outputs.map((o) => `- ${o.name}: ${o.description}`).join("\n")}`,
              `For each item, list the numbers of the ${config.maxUrls} pages most likely to state them, best first. Answer as {"rows": [{"id": "<item id>", "pages": [<number>...]}]}.`,
              ...rows.map((row) => {
                const list = ranked.get(row.key) ?? [];
                const search = stageData(row, config.searchStage, "search");
                const byUrl = new Map((search?.results ?? []).map((r) => [r.url, r]));
                return `### row ${row.key}\n${nameInputs.map((c) => `${c}: ${fieldText(row.fields[c])}`).join("\n")}\n${list
                  .map((s, i) => {
                    const r = byUrl.get(s.url);
                    return `${i + 1}. ${s.url} — ${r?.title ?? ""} — ${r?.snippet ?? ""}`;
                  })
                  .join("\n")}`;
              }),
            ].join("\n\n"),
            schema: {
              type: "object",
              additionalProperties: false,
              required: ["rows"],
              properties: {
                rows: {
                  type: "array",
                  items: {
                    type: "object",
                    additionalProperties: false,
                    required: ["id", "pages"],
                    properties: {
                      id: { type: "string" },
                      pages: { type: "array", items: { type: "integer" } },
                    },
                  },
                },
              },
            },
            schemaName: `${config.name}_pages`,
            signal: context.signal,
            purpose: { stage: config.name, rowKeys: rows.map((r) => r.key) },
          });
          calls = answer.attempts;
          const answered = (answer.json as { rows?: Array<{ id?: unknown; pages?: unknown }> })
            .rows;
          const entries = Array.isArray(answered) ? answered : [];
          // Cached only when every row got its pages: a gap is asked again next time.
          if (
            rows.every((row) =>
              entries.some((e) => String(e?.id) === row.key && Array.isArray(e.pages)),
            )
          )
            await answer.remember();
          for (const entry of entries) {
            const list = ranked.get(String(entry.id));
            if (!list || !Array.isArray(entry.pages)) continue;
            const chosen: SelectedUrl[] = [];
            for (const n of entry.pages) {
              const pick = typeof n === "number" ? list[n - 1] : undefined;
              if (pick && !chosen.some((c) => c.url === pick.url))
                chosen.push({ ...pick, reason: `chosen by the LLM; ${pick.reason}` });
            }
            // Keyword picks fill the places the model left empty.
            for (const s of list) if (!chosen.some((c) => c.url === s.url)) chosen.push(s);
            ranked.set(String(entry.id), chosen);
          }
        } catch (error) {
          if (!(error instanceof LlmError)) throw error;
          calls = error.attempts;
          llmError = `${error.errorClass}: ${error.message}`;
          context.log(`select stage ${config.name}: LLM failed, keyword ranking kept: ${llmError}`);
        }
      }
      const results = new Map<string, StageRowResult>();
      for (const row of rows) {
        const urls = (ranked.get(row.key) ?? []).slice(0, config.maxUrls);
        const data: SelectData = { urls, ...(llmError ? { llm_error: llmError } : {}) };
        results.set(row.key, { ok: true, values: {}, data });
      }
      return {
        rows: results,
        calls,
        usage: splitUsage(
          calls,
          rows.map((r) => r.key),
        ),
      };
    },
  };
}

/**
 * A title and the parts its separators (`|`, `—`, ` - `, `:`, `·`, `»`, brackets) cut it
 * into: "Register — Acme Rocketry GmbH (HRB 1234)" gives itself, "Register", "Acme Rocketry
 * GmbH" and "HRB 1234".
 */
export function titleParts(title: string): string[] {
  const parts = title
    .split(/\s[-–]\s|[|—:·»()[\]]/)
    .map((p) => p.trim())
    .filter((p) => p !== "");
  return [title, ...parts];
}

function fieldText(value: unknown): string {
  if (value === null || value === undefined) return "";
  return typeof value === "string" ? value : JSON.stringify(value);
}
