import type { EscalationSettings, StageConfig } from "./config-types.ts";
import { ConfigError } from "./config-error.ts";
import type { RawEscalation, RungName } from "./escalation-schema.ts";
import { templateFields } from "./template-fields.ts";

/**
 * pipelines.<p>.escalate, checked against the pipeline's stages. A pipeline whose last extract
 * stage reads a crawl stage gets a ladder unless it says `escalate: false`: render (unless the
 * crawl never renders), deeper, search_more when a search stage exists, stronger_model when
 * escalation_backends are named. Pipelines without such stages have nothing to climb.
 */
export function resolveEscalation(
  raw: RawEscalation | undefined,
  at: string,
  context: {
    stages: readonly StageConfig[];
    inputs: readonly string[];
    /** Declared in llm.backends, and the ones switched off (no key) with why. */
    backends: readonly string[];
    backendsOff: ReadonlyMap<string, string>;
  },
): EscalationSettings | undefined {
  if (raw === false) return undefined;
  const extract = [...context.stages].reverse().find((s) => s.kind === "extract");
  const crawl =
    extract?.kind === "extract" && extract.pagesStage
      ? context.stages.find((s) => s.name === extract.pagesStage)
      : undefined;
  if (!extract || extract.kind !== "extract" || !crawl || crawl.kind !== "crawl") {
    if (raw === undefined) return undefined;
    throw new ConfigError(
      at,
      "the escalation ladder climbs after a crawl and an extract stage, and this pipeline has none: remove escalate or write escalate: false",
    );
  }
  const searchStage = context.stages.find((s) => s.kind === "search")?.name;
  const settings = raw ?? {
    max_escalation_calls: 4,
    max_rounds: 1,
    max_pages: 4,
    escalation_backends: [],
  };
  settings.escalation_backends.forEach((name, i) => {
    if (!context.backends.includes(name))
      throw new ConfigError(
        `${at}.escalation_backends[${i}]`,
        `backend "${name}" is not declared in llm.backends (declared: ${context.backends.join(", ") || "none"})`,
      );
  });
  const backends = settings.escalation_backends.filter((b) => !context.backendsOff.has(b));
  const defaults: RungName[] = [
    ...(crawl.javascript === "never" ? [] : (["render"] as const)),
    "deeper",
    ...(searchStage ? (["search_more"] as const) : []),
    ...(backends.length > 0 ? (["stronger_model"] as const) : []),
  ];
  const rungs = settings.rungs ?? defaults;
  rungs.forEach((rung, i) => {
    if (rungs.indexOf(rung) !== i)
      throw new ConfigError(`${at}.rungs[${i}]`, `"${rung}" is named twice`);
    if (rung === "search_more" && !searchStage)
      throw new ConfigError(
        `${at}.rungs[${i}]`,
        "search_more searches again, but the pipeline has no search stage: add one or drop the rung",
      );
    if (rung === "stronger_model" && settings.escalation_backends.length === 0)
      throw new ConfigError(
        `${at}.escalation_backends`,
        "the stronger_model rung re-extracts with the next backend: name at least one here",
      );
  });
  const queryTemplates = settings.queries ?? [
    `${context.inputs.map((input) => `{{${input}}}`).join(" ")} {{column}}`,
  ];
  queryTemplates.forEach((template, i) => {
    for (const field of templateFields(template))
      if (field !== "column" && !context.inputs.includes(field))
        throw new ConfigError(
          `${at}.queries[${i}]`,
          `{{${field}}} is neither an input nor {{column}} (inputs: ${context.inputs.join(", ")})`,
        );
  });
  if (rungs.length === 0) return undefined;
  return {
    // With every stronger backend off (no key), that rung has nothing to run.
    rungs: rungs.filter((r) => r !== "stronger_model" || backends.length > 0),
    maxCalls: settings.max_escalation_calls,
    maxRounds: settings.max_rounds,
    maxPages: settings.max_pages,
    backends,
    queryTemplates,
    extractStage: extract.name,
    crawlStage: crawl.name,
    searchStage,
    outputs: extract.outputs,
  };
}
