import { defaultChromiumPath } from "../src/core/chromium-path.ts";
import { resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError } from "../src/config/config-error.ts";
import type {
  CrawlStageConfig,
  ExtractStageConfig,
  GleanerConfig,
  PipelineConfig,
  QueriesStageConfig,
  SearchStageConfig,
  SelectStageConfig,
  StageConfig,
} from "../src/config/config-types.ts";
import { parseConfig } from "../src/config/load-config.ts";

/**
 * The web research keys of gleaner.yaml (search, crawl, the queries / search / select / crawl /
 * extract stages, optional backends, seed) as parseConfig reads them: defaults, cross-checks
 * that name the key and say what to do, and optional backends switched off.
 */

type Json = Record<string, unknown>;

const MAIN = { name: "main", base_url: "http://127.0.0.1:9/v1", model: "fake" };

const PLAN = { name: "plan", kind: "queries" };
const FIND = { name: "find", kind: "search", provider: "web" };
const CHOOSE = { name: "choose", kind: "select" };
const FETCH = { name: "fetch", kind: "crawl" };
const READ = { name: "read", kind: "extract", backends: ["main"], outputs: ["founded"] };

/** A config text (JSON is YAML) with one pipeline `orgs` of the given stages. */
function yaml(
  stages: Json[],
  options: {
    backends?: Json[];
    providers?: Json;
    pipeline?: Json;
    top?: Json;
  } = {},
): string {
  return JSON.stringify({
    llm: { backends: options.backends ?? [MAIN] },
    search: { providers: options.providers ?? { web: { provider: "serper", api_key: "k-1" } } },
    pipelines: {
      orgs: {
        table: "orgs",
        inputs: ["name", "website"],
        outputs: {
          founded: { type: "integer", description: "Year founded" },
          industry: { type: "text", description: "Main industry" },
        },
        ...options.pipeline,
        stages,
      },
    },
    ...options.top,
  });
}

/** The research chain with a second extract that fills `industry`, so every output is filled. */
const CHAIN = [
  PLAN,
  FIND,
  CHOOSE,
  FETCH,
  READ,
  { name: "classify", kind: "llm", backends: ["main"], prompt: "{{name}}", outputs: ["industry"] },
];

function parse(text: string, options: { file?: string; env?: NodeJS.ProcessEnv } = {}) {
  return parseConfig(text, { env: {}, ...options });
}

function pipelineOf(config: GleanerConfig): PipelineConfig {
  const p = config.pipelines[0];
  if (!p) throw new Error("no pipeline");
  return p;
}

function stage<K extends StageConfig["kind"]>(
  config: GleanerConfig,
  name: string,
  kind: K,
): Extract<StageConfig, { kind: K }> {
  const s = pipelineOf(config).stages.find((x) => x.name === name);
  if (!s || s.kind !== kind) throw new Error(`no ${kind} stage ${name}`);
  return s as Extract<StageConfig, { kind: K }>;
}

function configError(text: string, env: NodeJS.ProcessEnv = {}): ConfigError {
  try {
    parse(text, { env });
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error("expected a ConfigError, but the config was accepted");
}

const AT = "pipelines.orgs.stages";

describe("research config: defaults", () => {
  it("keeps jobs of 10 × batch_size, whose rows settle together, for a research pipeline", () => {
    expect(pipelineOf(parse(yaml(CHAIN))).jobSize).toBe(100);
    expect(pipelineOf(parse(yaml(CHAIN, { pipeline: { batch_size: 3 } }))).jobSize).toBe(30);
    expect(pipelineOf(parse(yaml(CHAIN, { pipeline: { job_size: 500 } }))).jobSize).toBe(500);
  });

  it("gives search and crawl their documented defaults", () => {
    const config = parse(yaml(CHAIN));
    expect(config.search.cacheTtlMs).toBe(7 * 24 * 3600 * 1000);
    expect(config.search.providers).toEqual([
      {
        name: "web",
        provider: "serper",
        baseUrl: undefined,
        apiKey: "k-1",
        timeoutMs: 15_000,
        limit: 10,
        maxConcurrency: 4,
        corpus: undefined,
        folder: undefined,
      },
    ]);
    expect(config.crawl).toEqual({
      userAgent: undefined,
      allow: [],
      javascript: "auto",
      timeoutMs: 15_000,
      maxBytes: 5 * 1024 * 1024,
      maxRedirects: 5,
      cacheTtlMs: 24 * 3600 * 1000,
      robots: true,
      perHostConcurrency: 2,
      perHostDelayMs: 500,
      // Debian's headless shell when installed, else the full browser.
      browser: {
        executablePath: defaultChromiumPath(),
        contexts: 6,
        endpoint: undefined,
        proxyHost: "127.0.0.1",
      },
    });
  });

  it("gives a config without search or crawl sections no providers and the crawl defaults", () => {
    const config = parse(
      yaml(
        [
          {
            name: "c",
            kind: "llm",
            backends: ["main"],
            prompt: "{{name}}",
            outputs: ["founded", "industry"],
          },
        ],
        {
          providers: {},
        },
      ),
    );
    expect(config.search.providers).toEqual([]);
    expect(config.crawl.javascript).toBe("auto");
  });

  it("gives each research stage kind its defaults and links it to the stage it reads", () => {
    const config = parse(yaml(CHAIN));
    expect(stage(config, "plan", "queries")).toEqual({
      name: "plan",
      kind: "queries",
      outputs: [],
      when: undefined,
      batchSize: 10,
      templates: ["{{name}} {{website}} {{search_context}}"],
      searchContext: "",
      llm: undefined,
      maxQueries: 3,
    } satisfies QueriesStageConfig);
    expect(stage(config, "find", "search")).toEqual({
      name: "find",
      kind: "search",
      outputs: [],
      when: undefined,
      batchSize: 10,
      provider: "web",
      resultsPerQuery: 8,
      queriesStage: "plan",
    } satisfies SearchStageConfig);
    expect(stage(config, "choose", "select")).toEqual({
      name: "choose",
      kind: "select",
      outputs: [],
      when: undefined,
      batchSize: 10,
      maxUrls: 4,
      // The input whose name says it holds a website.
      domainInput: "website",
      keywords: [],
      llm: undefined,
      searchStage: "find",
    } satisfies SelectStageConfig);
    expect(stage(config, "fetch", "crawl")).toEqual({
      name: "fetch",
      kind: "crawl",
      outputs: [],
      when: undefined,
      batchSize: 10,
      maxDepth: 1,
      strategy: "selective",
      maxPages: 8,
      urlInput: undefined,
      javascript: "auto",
      rowTimeoutMs: 60_000,
      followKeywords: [],
      urlsStage: "choose",
    } satisfies CrawlStageConfig);
    expect(stage(config, "read", "extract")).toEqual({
      name: "read",
      kind: "extract",
      outputs: ["founded"],
      when: undefined,
      batchSize: 10,
      backends: ["main"],
      structuredData: true,
      tokenBudget: 1500,
      prompt: undefined,
      system: undefined,
      pagesStage: "fetch",
      searchStage: "find",
    } satisfies ExtractStageConfig);
  });

  it("lets a crawl stage inherit crawl.javascript, read a search stage, and a stage override both", () => {
    const config = parse(
      yaml(
        [
          PLAN,
          FIND,
          { name: "fetch", kind: "crawl", batch_size: 3 },
          { name: "fetch_js", kind: "crawl", javascript: "always", url_input: "website" },
          { ...READ, outputs: ["founded", "industry"] },
        ],
        { top: { crawl: { javascript: "never" } } },
      ),
    );
    // No select stage: the crawl reads the search stage's results.
    expect(stage(config, "fetch", "crawl")).toMatchObject({
      javascript: "never",
      urlsStage: "find",
      batchSize: 3,
    });
    expect(stage(config, "fetch_js", "crawl")).toMatchObject({
      javascript: "always",
      urlInput: "website",
    });
    // The extract reads the latest crawl stage.
    expect(stage(config, "read", "extract").pagesStage).toBe("fetch_js");
  });

  it("builds the default query template from every input, and infers no domain input when none looks like one", () => {
    const config = parse(
      yaml([PLAN, FIND, CHOOSE, { ...READ, outputs: ["founded", "industry"] }], {
        pipeline: { inputs: ["name", "city"] },
      }),
    );
    expect(stage(config, "plan", "queries").templates).toEqual([
      "{{name}} {{city}} {{search_context}}",
    ]);
    expect(stage(config, "choose", "select").domainInput).toBeUndefined();
    // An extract after search alone reads the snippets: no crawl stage to read pages from.
    expect(stage(config, "read", "extract")).toMatchObject({
      pagesStage: undefined,
      searchStage: "find",
    });
  });

  it("keeps a local provider's corpus (from its name) and resolves its folder against the config file", () => {
    const config = parse(
      yaml(CHAIN, {
        providers: {
          web: { provider: "serper", api_key: "k-1" },
          "my-docs": { provider: "local", folder: "corpus/docs" },
          named: { provider: "local", corpus: "shared_docs" },
        },
      }),
      { file: "/srv/gleaner/gleaner.yaml" },
    );
    expect(config.search.providers.find((p) => p.name === "my-docs")).toMatchObject({
      provider: "local",
      corpus: "my_docs",
      folder: "/srv/gleaner/corpus/docs",
      baseUrl: undefined,
      apiKey: undefined,
    });
    expect(config.search.providers.find((p) => p.name === "named")).toMatchObject({
      corpus: "shared_docs",
      folder: undefined,
    });
  });
});

describe("research config: cross-checks name the key and say what to do", () => {
  it("refuses a search stage without an earlier queries stage", () => {
    const error = configError(yaml([FIND, PLAN, CHOOSE, FETCH, READ]));
    expect(error.path).toBe(`${AT}[0].kind`);
    expect(error.message).toContain(
      `config ${AT}[0].kind: a search stage reads the output of an earlier queries stage: add one before it`,
    );
  });

  it("refuses a select stage without an earlier search stage", () => {
    const error = configError(yaml([PLAN, CHOOSE, FIND, FETCH, READ]));
    expect(error.path).toBe(`${AT}[1].kind`);
    expect(error.message).toMatch(
      /a select stage reads the output of an earlier search stage: add one before it/,
    );
  });

  it("refuses a crawl stage with neither a URLs stage before it nor url_input", () => {
    const error = configError(yaml([FETCH, PLAN, FIND, READ]));
    expect(error.path).toBe(`${AT}[0].url_input`);
    expect(error.message).toMatch(
      /add a select \(or search\) stage before it, or name the input column holding a URL in url_input/,
    );
  });

  it("accepts a crawl stage with url_input alone, with no search at all", () => {
    const config = parse(
      yaml(
        [
          { name: "fetch", kind: "crawl", url_input: "website" },
          { ...READ, outputs: ["founded", "industry"] },
        ],
        {
          providers: {},
        },
      ),
    );
    expect(stage(config, "fetch", "crawl")).toMatchObject({
      urlInput: "website",
      urlsStage: undefined,
    });
    expect(stage(config, "read", "extract")).toMatchObject({
      pagesStage: "fetch",
      searchStage: undefined,
    });
  });

  it("refuses an extract stage with neither a crawl nor a search stage before it", () => {
    const error = configError(yaml([READ, PLAN]));
    expect(error.path).toBe(`${AT}[0].kind`);
    expect(error.message).toMatch(
      /an extract stage reads pages or search results: add a crawl or search stage before it/,
    );
  });

  it("refuses a search stage naming an undeclared provider, listing the declared ones", () => {
    const error = configError(yaml([PLAN, { ...FIND, provider: "bing" }, READ]));
    expect(error.path).toBe(`${AT}[1].provider`);
    expect(error.message).toMatch(
      /search provider "bing" is not declared under search\.providers \(declared: web\)/,
    );
  });

  it("refuses an undeclared backend in an extract stage, queries.llm and select.llm", () => {
    const cases: Array<[Json[], string]> = [
      [[PLAN, FIND, { ...READ, backends: ["main", "ghost"] }], `${AT}[2].backends`],
      [[{ ...PLAN, llm: { backends: ["ghost"] } }, FIND, READ], `${AT}[0].llm.backends`],
      [[PLAN, FIND, { ...CHOOSE, llm: { backends: ["ghost"] } }, READ], `${AT}[2].llm.backends`],
    ];
    for (const [stages, path] of cases) {
      const error = configError(
        yaml([
          ...stages,
          { name: "c", kind: "llm", backends: ["main"], prompt: "x", outputs: ["industry"] },
        ]),
      );
      expect(error.path).toBe(path);
      expect(error.message).toContain(
        `backend "ghost" is not declared in llm.backends (declared: main)`,
      );
    }
  });

  it("refuses a query template field that is not an input or an earlier output", () => {
    const error = configError(
      yaml([
        { ...PLAN, templates: ["{{name}} official site", "{{name}} {{industry}}"] },
        FIND,
        READ,
        CHAIN[5] as Json,
      ]),
    );
    expect(error.path).toBe(`${AT}[0].templates[1]`);
    expect(error.message).toMatch(
      /\{\{industry\}\} is neither an input nor an output of an earlier stage \(allowed: .*name, website/,
    );
  });

  it("accepts {{search_context}} and earlier outputs in query templates", () => {
    const config = parse(
      yaml([
        { name: "c", kind: "llm", backends: ["main"], prompt: "{{name}}", outputs: ["industry"] },
        {
          ...PLAN,
          templates: ["{{name}} {{industry}} {{search_context}}"],
          search_context: "company",
        },
        FIND,
        READ,
      ]),
    );
    expect(stage(config, "plan", "queries")).toMatchObject({
      templates: ["{{name}} {{industry}} {{search_context}}"],
      searchContext: "company",
    });
  });

  it("refuses a domain_input or url_input that is not an input", () => {
    const domain = configError(
      yaml([PLAN, FIND, { ...CHOOSE, domain_input: "homepage" }, ...CHAIN.slice(3)]),
    );
    expect(domain.path).toBe(`${AT}[2].domain_input`);
    expect(domain.message).toMatch(/"homepage" is not an input \(inputs: name, website\)/);
    const url = configError(yaml([{ ...FETCH, url_input: "homepage" }, READ, CHAIN[5] as Json]));
    expect(url.path).toBe(`${AT}[0].url_input`);
    expect(url.message).toMatch(/"homepage" is not an input \(inputs: name, website\)/);
  });

  it("refuses serper without api_key, naming the variable to set", () => {
    const error = configError(yaml(CHAIN, { providers: { web: { provider: "serper" } } }));
    expect(error.path).toBe("search.providers.web.api_key");
    expect(error.message).toContain("serper needs an API key (e.g. api_key: ${SERPER_API_KEY})");
    // `${SERPER_API_KEY:-}` with the variable unset is no key either.
    const empty = configError(
      yaml(CHAIN, { providers: { web: { provider: "serper", api_key: "${SERPER_API_KEY:-}" } } }),
    );
    expect(empty.path).toBe("search.providers.web.api_key");
  });

  it("refuses searxng without base_url", () => {
    const error = configError(
      yaml([PLAN, { ...FIND, provider: "sx" }, READ, CHAIN[5] as Json], {
        providers: { sx: { provider: "searxng" } },
      }),
    );
    expect(error.path).toBe("search.providers.sx.base_url");
    expect(error.message).toMatch(/searxng is self-hosted: set its base_url/);
  });

  it("refuses a local provider given an api_key, naming that key", () => {
    const error = configError(
      yaml(CHAIN, {
        providers: { web: { provider: "local", folder: "docs", api_key: "k-1" } },
      }),
    );
    expect(error.path).toBe("search.providers.web.api_key");
    expect(error.message).toMatch(/api_key/);
  });

  it("rejects `outputs` on each research stage kind as an unknown key", () => {
    for (const [index, s] of [PLAN, FIND, CHOOSE, FETCH].entries()) {
      const stages = [...CHAIN];
      stages[index] = { ...s, outputs: ["founded"] };
      const error = configError(yaml(stages));
      expect(error.path).toBe(`${AT}[${index}]`);
      expect(error.message).toContain("unknown key outputs");
    }
  });
});

describe("research config: optional backends", () => {
  const HOSTED = {
    name: "hosted",
    base_url: "https://api.openai.com/v1",
    api_key: "${OPENAI_API_KEY:-}",
    model: "gpt-4o-mini",
    optional: true,
  };

  it("switches off an optional hosted backend without a key and drops it from research stages", () => {
    const config = parse(
      yaml(
        [
          { ...PLAN, llm: { backends: ["hosted"] } },
          FIND,
          { ...CHOOSE, llm: { backends: ["hosted", "main"] } },
          FETCH,
          { ...READ, backends: ["hosted", "main"] },
          {
            name: "classify",
            kind: "llm",
            backends: ["hosted", "main"],
            prompt: "{{name}}",
            outputs: ["industry"],
          },
        ],
        { backends: [HOSTED, MAIN] },
      ),
    );
    expect(config.backendsOff).toEqual([
      {
        name: "hosted",
        reason:
          "optional backend hosted is off: https://api.openai.com/v1 is a hosted API and it has no api_key",
      },
    ]);
    expect(config.backends.map((b) => b.name)).toEqual(["main"]);
    // queries.llm named only the off backend: the stage runs on its templates alone.
    expect(stage(config, "plan", "queries").llm).toBeUndefined();
    expect(stage(config, "choose", "select").llm).toEqual({ backends: ["main"] });
    expect(stage(config, "read", "extract").backends).toEqual(["main"]);
    expect(stage(config, "classify", "llm").backends).toEqual(["main"]);
  });

  it("keeps the same backend on when its key is set", () => {
    const config = parse(yaml(CHAIN, { backends: [HOSTED, MAIN] }), {
      env: { OPENAI_API_KEY: "sk-test-0123456789" },
    });
    expect(config.backendsOff).toEqual([]);
    expect(config.backends.map((b) => b.name)).toEqual(["hosted", "main"]);
  });

  it("refuses an llm stage naming only backends that are off, and says how to fix it", () => {
    const error = configError(
      yaml(
        [
          PLAN,
          FIND,
          READ,
          {
            name: "classify",
            kind: "llm",
            backends: ["hosted"],
            prompt: "{{name}}",
            outputs: ["industry"],
          },
        ],
        { backends: [HOSTED, MAIN] },
      ),
    );
    expect(error.path).toBe(`${AT}[3].backends`);
    expect(error.message).toMatch(/every backend it names is off: optional backend hosted is off/);
    expect(error.message).toMatch(/Set the key, or name another backend/);
  });

  it("refuses an extract stage with structured_data off whose backends are all off: nothing would extract", () => {
    const error = configError(
      yaml(
        [
          PLAN,
          FIND,
          {
            ...READ,
            backends: ["hosted"],
            structured_data: false,
            outputs: ["founded", "industry"],
          },
        ],
        {
          backends: [HOSTED, MAIN],
        },
      ),
    );
    expect(error.path).toBe(`${AT}[2].backends`);
  });

  it("keeps an optional loopback backend without a key on", () => {
    const ollama = {
      name: "ollama",
      base_url: "http://127.0.0.1:11434/v1",
      model: "llama3.1",
      optional: true,
    };
    const config = parse(
      yaml([PLAN, FIND, { ...READ, backends: ["ollama"], outputs: ["founded", "industry"] }], {
        backends: [ollama],
      }),
    );
    expect(config.backendsOff).toEqual([]);
    expect(config.backends.map((b) => b.name)).toEqual(["ollama"]);
    expect(stage(config, "read", "extract").backends).toEqual(["ollama"]);
  });

  it("keeps a hosted backend that is not optional on even without a key", () => {
    const config = parse(yaml(CHAIN, { backends: [{ ...HOSTED, optional: false }, MAIN] }));
    expect(config.backendsOff).toEqual([]);
    expect(config.backends.map((b) => b.name)).toEqual(["hosted", "main"]);
  });
});

describe("research config: seed", () => {
  it("resolves a pipeline's seed path against the config file's folder", () => {
    const config = parse(yaml(CHAIN, { pipeline: { seed: "data/orgs.csv" } }), {
      file: "/srv/gleaner/gleaner.yaml",
    });
    expect(pipelineOf(config).seed).toBe("/srv/gleaner/data/orgs.csv");
    const absolute = parse(yaml(CHAIN, { pipeline: { seed: "/data/orgs.csv" } }), {
      file: "/srv/gleaner/gleaner.yaml",
    });
    expect(pipelineOf(absolute).seed).toBe("/data/orgs.csv");
  });

  it("resolves a seed against the working directory when there is no file, and leaves it unset by default", () => {
    const config = parse(yaml(CHAIN, { pipeline: { seed: "orgs.csv" } }));
    expect(pipelineOf(config).seed).toBe(resolve("orgs.csv"));
    expect(pipelineOf(parse(yaml(CHAIN))).seed).toBeUndefined();
  });
});
