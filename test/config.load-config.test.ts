import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parseDocument, type Document } from "yaml";
import { ConfigError } from "../src/config/config-error.ts";
import type { GleanerConfig, PipelineConfig } from "../src/config/config-types.ts";
import { loadConfigFile, parseConfig } from "../src/config/load-config.ts";
import { parseDuration } from "../src/config/parse-duration.ts";

/** The smallest useful config: every optional key left to its default. */
const BASE = `
llm:
  backends:
    - name: openai
      base_url: https://api.openai.com/v1/
      api_key: \${OPENAI_API_KEY}
      model: gpt-4o-mini
    - name: local
      base_url: http://127.0.0.1:11434/v1
      model: llama3.1
pipelines:
  companies:
    table: companies
    inputs: [name, website]
    outputs:
      summary: { type: text, description: What the company does }
      industry: { type: text, description: Its main industry }
      employees: { type: integer, description: Head count }
    stages:
      - name: analyse
        kind: llm
        backends: [openai, local]
        outputs: [summary]
        prompt: "Describe {{name}} ({{website}})."
      - name: classify
        kind: llm
        backends: [openai]
        when: { output: summary, is_null: false }
        outputs: [industry, employees]
        prompt: "Classify {{name}}: {{summary}}"
`;

/** Every key of the schema set explicitly. */
const FULL = `
database_url: \${DATABASE_URL}
schema: enrich
worker_schema: enrich_worker
embedded: { data_dir: data/pg, port: 55432 }
http: { host: 0.0.0.0, port: 9000 }
worker: { concurrency: 4, poll_interval: 500ms }
llm:
  backends:
    - name: azure
      base_url: https://res.openai.azure.com/openai/deployments/gpt4o
      model: gpt-4o
      timeout: 90s
      max_concurrency: 8
      structured_output: json_schema
      temperature: 0
      headers:
        api-key: \${AZURE_OPENAI_KEY}
      query:
        api-version: "2024-10-21"
      price: { input_per_million: 2.5, output_per_million: 10 }
    - name: ollama
      base_url: http://127.0.0.1:11434/v1
      model: llama3.1
      structured_output: none
pipelines:
  companies:
    table: crm.companies
    key: company_id
    inputs: [name, website]
    outputs:
      summary: { type: text, description: What the company does }
      industry: { type: text, description: Its main industry }
      tags: { type: "text[]", description: Keywords }
      decision: { type: boolean, description: Worth a call }
    prefix: gl_
    min_confidence: 0.5
    low_confidence_retry_after: 2h
    on_input_change: ignore
    schedule: "*/5 * * * *"
    batch_size: 20
    sweep_limit: 500
    lease: 10m
    queue_timeout: 1h
    retry: { max_attempts: 3, delays: [30s, 2m], jitter: 0 }
    stages:
      - name: analyse
        kind: llm
        backends: [azure, ollama]
        outputs: [summary]
        system: "You research companies."
        prompt: "Describe {{name}} ({{website}})."
        batch_size: 5
      - name: classify
        kind: custom
        module: ./stages/classify.ts
        export: classify
        outputs: [industry, tags]
        when: { output: summary, is_null: false }
      - name: decide
        kind: llm
        backends: [ollama]
        outputs: [decision]
        when:
          all:
            - { output: industry, in: [software, biotech] }
            - not: { output: tags, is_null: true }
        prompt: "{{name}} is in {{industry}}. Call them?"
`;

const ENV = { OPENAI_API_KEY: "sk-test-0123456789" };

/** A folder holding FULL's custom stage module: a stage whose module is missing does not load. */
const home = mkdtempSync(join(tmpdir(), "gleaner-config-home-"));
mkdirSync(join(home, "stages"));
writeFileSync(join(home, "stages/classify.ts"), "export function classify() {}\n");
afterAll(() => rmSync(home, { recursive: true, force: true }));

/** FULL as if read from a file in `home`, so its relative paths resolve there. */
function parseFull(env: NodeJS.ProcessEnv): GleanerConfig {
  return parseConfig(FULL, { env, file: join(home, "gleaner.yaml") });
}

function parse(text: string, env: NodeJS.ProcessEnv = ENV): GleanerConfig {
  return parseConfig(text, { env });
}

function pipelineOf(config: GleanerConfig): PipelineConfig {
  const p = config.pipelines[0];
  if (!p) throw new Error("no pipeline");
  return p;
}

/** BASE with one structural edit, e.g. `(d) => d.setIn(["pipelines", "companies", "lease"], "5")`. */
function variant(edit: (doc: Document) => void, text: string = BASE): string {
  const doc = parseDocument(text);
  edit(doc);
  return doc.toString();
}

const PIPE = ["pipelines", "companies"];
const STAGES = [...PIPE, "stages"];

/** The ConfigError that parsing throws; fails the test when it parses or throws anything else. */
function errorOf(run: () => unknown): ConfigError {
  try {
    run();
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error("expected a ConfigError, but the config was accepted");
}

function configError(text: string, env: NodeJS.ProcessEnv = ENV): ConfigError {
  return errorOf(() => parse(text, env));
}

describe("parseConfig: a valid config", () => {
  it("applies every default", () => {
    const config = parse(BASE);
    expect(config.file).toBeUndefined();
    expect(config.databaseUrl).toBeUndefined();
    expect(config.schema).toBe("gleaner");
    expect(config.workerSchema).toBe("graphile_worker");
    expect(config.embedded).toEqual({ dataDir: resolve(".gleaner/postgres"), port: 54329 });
    expect(config.http).toEqual({ host: "127.0.0.1", port: 9464 });
    expect(config.worker).toEqual({
      concurrency: 16,
      pollIntervalMs: 2000,
      localQueue: 0,
      preparedStatements: true,
    });

    const [openai, local] = config.backends;
    expect(openai).toMatchObject({
      name: "openai",
      base_url: "https://api.openai.com/v1", // trailing slash removed
      api_key: "sk-test-0123456789",
      timeout_ms: 60_000,
      max_concurrency: 16,
      structured_output: "auto",
    });
    expect(local?.api_key).toBeUndefined();

    const p = pipelineOf(config);
    expect(p).toMatchObject({
      name: "companies",
      table: { schema: "public", name: "companies" },
      key: "id",
      inputs: ["name", "website"],
      prefix: "enrichment_",
      minConfidence: 0.7,
      lowConfidenceRetryAfterMs: 3_600_000,
      onInputChange: "reprocess",
      schedule: "* * * * *",
      batchSize: 10,
      // Only `llm` stages: jobs of 20 × batch_size (docs/configuration.md `job_size`).
      jobSize: 200,
      sweepLimit: 10_000,
      leaseMs: 300_000,
      queueTimeoutMs: 1_800_000,
    });
    expect(p.retry).toEqual({
      maxAttempts: 5,
      delaysMs: [60_000, 300_000, 900_000, 3_600_000, 14_400_000],
      jitter: 0.2,
    });
    expect(p.outputs.map((o) => [o.name, o.type])).toEqual([
      ["summary", "text"],
      ["industry", "text"],
      ["employees", "integer"],
    ]);
    expect(p.stages.map((s) => [s.name, s.batchSize])).toEqual([
      ["analyse", 10],
      ["classify", 10],
    ]);
    expect(p.stages[1]?.when).toEqual({ output: "summary", is_null: false });
  });

  it("reads every key of a full config", () => {
    const config = parseFull({
      DATABASE_URL: "postgres://u:secret-pw@db.example/enrich",
      AZURE_OPENAI_KEY: "azure-key-abcdef",
    });
    expect(config.databaseUrl).toBe("postgres://u:secret-pw@db.example/enrich");
    expect(config.schema).toBe("enrich");
    expect(config.workerSchema).toBe("enrich_worker");
    expect(config.embedded).toEqual({ dataDir: join(home, "data/pg"), port: 55432 });
    expect(config.http).toEqual({ host: "0.0.0.0", port: 9000 });
    expect(config.worker).toEqual({
      concurrency: 4,
      pollIntervalMs: 500,
      localQueue: 0,
      preparedStatements: true,
    });
    expect(config.backends[0]).toEqual({
      name: "azure",
      base_url: "https://res.openai.azure.com/openai/deployments/gpt4o",
      api_key: undefined,
      model: "gpt-4o",
      timeout_ms: 90_000,
      max_concurrency: 8,
      structured_output: "json_schema",
      temperature: 0,
      headers: { "api-key": "azure-key-abcdef" },
      query: { "api-version": "2024-10-21" },
      price: { input_per_million: 2.5, output_per_million: 10 },
    });
    expect(config.backends[1]?.structured_output).toBe("none");

    const p = pipelineOf(config);
    expect(p).toMatchObject({
      table: { schema: "crm", name: "companies" },
      key: "company_id",
      prefix: "gl_",
      minConfidence: 0.5,
      lowConfidenceRetryAfterMs: 7_200_000,
      onInputChange: "ignore",
      schedule: "*/5 * * * *",
      batchSize: 20,
      sweepLimit: 500,
      leaseMs: 600_000,
      queueTimeoutMs: 3_600_000,
      retry: { maxAttempts: 3, delaysMs: [30_000, 120_000], jitter: 0 },
    });
    const [analyse, classify, decide] = p.stages;
    expect(analyse).toMatchObject({ kind: "llm", batchSize: 5, system: "You research companies." });
    expect(classify).toMatchObject({
      kind: "custom",
      module: join(home, "stages/classify.ts"),
      exportName: "classify",
      batchSize: 20,
    });
    expect(decide?.when).toEqual({
      all: [
        { output: "industry", in: ["software", "biotech"] },
        { not: { output: "tags", is_null: true } },
      ],
    });
  });

  it("is deeply frozen", () => {
    const config = parse(BASE);
    const p = pipelineOf(config);
    for (const part of [
      config,
      config.http,
      config.backends,
      p,
      p.retry,
      p.retry.delaysMs,
      p.stages[1]?.when,
    ]) {
      expect(Object.isFrozen(part)).toBe(true);
    }
    // Test files are ES modules, so strict mode: writing to a frozen object throws.
    expect(() => {
      (p as { leaseMs: number }).leaseMs = 1;
    }).toThrow(TypeError);
    expect(() => (p.retry.delaysMs as number[]).push(1)).toThrow(TypeError);
  });

  it("versions a pipeline by its recipe: prompts and models count, the schedule does not", () => {
    const version = pipelineOf(parse(BASE)).version;
    expect(version).toMatch(/^[0-9a-f]{12}$/);
    expect(pipelineOf(parse(BASE)).version).toBe(version);

    const rescheduled = variant((d) => d.setIn([...PIPE, "schedule"], "*/10 * * * *"));
    expect(pipelineOf(parse(rescheduled)).version).toBe(version);

    const reworded = variant((d) => d.setIn([...STAGES, 1, "prompt"], "Industry of {{name}}?"));
    expect(pipelineOf(parse(reworded)).version).not.toBe(version);

    const otherModel = variant((d) => d.setIn(["llm", "backends", 0, "model"], "gpt-4o"));
    expect(pipelineOf(parse(otherModel)).version).not.toBe(version);
  });

  it("lets two pipelines share a table with different prefixes", () => {
    const text = variant((d) => {
      d.setIn(["pipelines", "people"], {
        table: "public.companies",
        prefix: "people_",
        inputs: ["name"],
        outputs: { ceo: { type: "text", description: "Chief executive" } },
        stages: [
          { name: "find", kind: "llm", backends: ["openai"], outputs: ["ceo"], prompt: "{{name}}" },
        ],
      });
    });
    expect(parse(text).pipelines.map((p) => [p.name, p.prefix])).toEqual([
      ["companies", "enrichment_"],
      ["people", "people_"],
    ]);
  });
});

describe("parseConfig: ${ENV} interpolation", () => {
  it("fails on an unset variable, naming it and the key path", () => {
    const error = configError(BASE, {});
    expect(error.path).toBe("llm.backends[0].api_key");
    expect(error.message).toContain("config llm.backends[0].api_key:");
    expect(error.message).toContain("environment variable OPENAI_API_KEY is not set");
    expect(error.message).toContain("${OPENAI_API_KEY:-default}");
  });

  it("treats a variable set to the empty string as unset, never as an empty value", () => {
    const error = configError(BASE, { OPENAI_API_KEY: "" });
    expect(error.path).toBe("llm.backends[0].api_key");
    expect(error.message).toContain("OPENAI_API_KEY is not set");
  });

  it("uses the ${VAR:-fallback} value when the variable is unset", () => {
    const text = BASE.replace("${OPENAI_API_KEY}", "${OPENAI_API_KEY:-no-key}");
    expect(parse(text, {}).backends[0]?.api_key).toBe("no-key");
    expect(parse(text, { OPENAI_API_KEY: "sk-real-key" }).backends[0]?.api_key).toBe("sk-real-key");
  });

  it("treats an empty api_key, as from ${VAR:-}, as no key", () => {
    const text = BASE.replace("${OPENAI_API_KEY}", "${OPENAI_API_KEY:-}");
    expect(parse(text, {}).backends[0]?.api_key).toBeUndefined();
  });

  it("collects the values taken from the environment as secrets, not fallbacks", () => {
    const text = variant((d) => d.set("database_url", "${DATABASE_URL:-postgres://localhost/x}"));
    expect(parse(text).secrets).toEqual(["sk-test-0123456789"]);
    const both = parse(text, { ...ENV, DATABASE_URL: "postgres://u:pw@h/db" });
    // The URL's password is a secret of its own: drivers quote it without the rest.
    expect([...both.secrets].sort()).toEqual(["postgres://u:pw@h/db", "pw", "sk-test-0123456789"]);
  });

  it("writes $${ as a literal ${", () => {
    const text = variant((d) =>
      d.setIn([...PIPE, "outputs", "summary", "description"], "Cost in $${CURRENCY} units"),
    );
    expect(pipelineOf(parse(text)).outputs[0]?.description).toBe("Cost in ${CURRENCY} units");
  });

  it("interpolates inside longer strings and in several places", () => {
    const text = variant((d) => d.set("database_url", "postgres://${DB_USER}@${DB_HOST}/gleaner"));
    const config = parse(text, { ...ENV, DB_USER: "app", DB_HOST: "db.internal" });
    expect(config.databaseUrl).toBe("postgres://app@db.internal/gleaner");
  });
});

describe("parseConfig: rejected configs", () => {
  it("names an unknown key", () => {
    const error = configError(variant((d) => d.setIn([...PIPE, "min_confidense"], 0.8)));
    expect(error.path).toBe("pipelines.companies");
    expect(error.message).toContain("unknown key min_confidense");
    expect(error.message).toContain("docs/configuration.md");
  });

  it("names an unknown key at the root and in a backend", () => {
    expect(configError(variant((d) => d.set("pipeline", {}))).message).toContain(
      "unknown key pipeline",
    );
    const error = configError(variant((d) => d.setIn(["llm", "backends", 1, "api_kee"], "x")));
    expect(error.path).toBe("llm.backends[1]");
    expect(error.message).toContain("unknown key api_kee");
  });

  it("lists the allowed output types", () => {
    const error = configError(
      variant((d) => d.setIn([...PIPE, "outputs", "industry", "type"], "string")),
    );
    expect(error.path).toBe("pipelines.companies.outputs.industry.type");
    expect(error.message).toContain(
      "must be one of text, integer, numeric, boolean, date, timestamptz, text[], jsonb",
    );
  });

  it("rejects a duration without a unit and shows how to write one", () => {
    const quoted = configError(variant((d) => d.setIn([...PIPE, "lease"], "5")));
    expect(quoted.path).toBe("pipelines.companies.lease");
    expect(quoted.message).toContain('"5" is not a duration');
    expect(quoted.message).toContain("5m");
    // Unquoted in YAML, 5 is a number: the same advice, not a bare "expected string".
    const bare = configError(variant((d) => d.setIn([...PIPE, "retry", "delays"], ["1m", 5])));
    expect(bare.path).toBe("pipelines.companies.retry.delays[1]");
    expect(bare.message).toContain("5 is not a duration");
    expect(bare.message).toContain("5m");
  });

  it("rejects a duration under its minimum", () => {
    const error = configError(variant((d) => d.setIn([...PIPE, "lease"], "500ms")));
    expect(error.path).toBe("pipelines.companies.lease");
    expect(error.message).toContain("must be at least 1s");
  });

  it("rejects a bad cron schedule", () => {
    const error = configError(variant((d) => d.setIn([...PIPE, "schedule"], "every minute")));
    expect(error.path).toBe("pipelines.companies.schedule");
    expect(error.message).toContain("must be a cron expression");
  });

  it("says a missing key is required and a wrong type is wrong", () => {
    const missing = configError(variant((d) => d.deleteIn([...PIPE, "inputs"])));
    expect(missing.path).toBe("pipelines.companies.inputs");
    expect(missing.message).toContain("is required (array)");
    const wrongType = configError(variant((d) => d.setIn(["embedded", "port"], "5432")));
    expect(wrongType.path).toBe("embedded.port");
    expect(wrongType.message).not.toContain("is required");
    expect(wrongType.message).toContain("expected number, received string");
  });

  it("rejects a stage output that is not declared in outputs", () => {
    const error = configError(
      variant((d) => d.setIn([...STAGES, 1, "outputs"], ["industry", "revenue"])),
    );
    expect(error.path).toBe("pipelines.companies.stages[1].outputs");
    expect(error.message).toContain('"revenue" is not declared in pipelines.companies.outputs');
    expect(error.message).toContain("declared: summary, industry, employees");
  });

  it("rejects an output no stage fills", () => {
    const error = configError(
      variant((d) =>
        d.setIn([...PIPE, "outputs", "founded"], { type: "date", description: "Founding date" }),
      ),
    );
    expect(error.path).toBe("pipelines.companies.stages");
    expect(error.message).toContain("no stage fills founded");
  });

  it("rejects a stage backend missing from llm.backends", () => {
    const error = configError(
      variant((d) => d.setIn([...STAGES, 0, "backends"], ["openai", "claude"])),
    );
    expect(error.path).toBe("pipelines.companies.stages[0].backends");
    expect(error.message).toContain('backend "claude" is not declared in llm.backends');
    expect(error.message).toContain("declared: openai, local");
  });

  it("rejects a backend name used twice", () => {
    const error = configError(variant((d) => d.setIn(["llm", "backends", 1, "name"], "openai")));
    expect(error.path).toBe("llm.backends[1].name");
    expect(error.message).toContain('"openai" is used twice');
  });

  it("rejects a template field that is neither an input nor an earlier output", () => {
    const unknown = configError(
      variant((d) => d.setIn([...STAGES, 0, "prompt"], "Who is {{ceo}}?")),
    );
    expect(unknown.path).toBe("pipelines.companies.stages[0].prompt");
    expect(unknown.message).toContain(
      "{{ceo}} is neither an input nor an output of an earlier stage",
    );
    expect(unknown.message).toContain("allowed: name, website, id");

    // classify's own output is not known yet while analyse runs.
    const later = configError(
      variant((d) => d.setIn([...STAGES, 0, "system"], "About {{industry}}")),
    );
    expect(later.path).toBe("pipelines.companies.stages[0].system");
    expect(later.message).toContain("{{industry}}");
  });

  it("rejects a row field in a system message, which one batch of rows shares", () => {
    const llm = configError(variant((d) => d.setIn([...STAGES, 0, "system"], "About {{name}}")));
    expect(llm.path).toBe("pipelines.companies.stages[0].system");
    expect(llm.message).toMatch(/\{\{name\}\} names a row field.*shared by every row/);
  });

  it("rejects a `when` on an output of the same or a later stage", () => {
    const later = configError(
      variant((d) => d.setIn([...STAGES, 0, "when"], { output: "industry", equals: "software" })),
    );
    expect(later.path).toBe("pipelines.companies.stages[0].when");
    expect(later.message).toContain('"industry" is not filled by an earlier stage');
    expect(later.message).toContain("earlier outputs: none");

    const nested = configError(
      variant((d) =>
        d.setIn([...STAGES, 1, "when"], {
          all: [{ output: "summary", is_null: false }, { not: { output: "employees", gt: 10 } }],
        }),
      ),
    );
    expect(nested.path).toBe("pipelines.companies.stages[1].when.all[1].not");
    expect(nested.message).toContain("earlier outputs: summary");
  });

  it("rejects a `when` without a test or with two combinators", () => {
    const noTest = configError(
      variant((d) => d.setIn([...STAGES, 1, "when"], { output: "summary" })),
    );
    expect(noTest.path).toBe("pipelines.companies.stages[1].when");
    expect(noTest.message).toContain('a test on "summary" needs one of equals');
    const two = configError(variant((d) => d.setIn([...STAGES, 1, "when"], { all: [], any: [] })));
    expect(two.message).toContain("exactly one of all / any / not");
  });

  it("reads examples and their token limit, which needs examples: true", () => {
    expect(pipelineOf(parse(BASE)).examples).toBeUndefined();
    const on = variant((d) => d.setIn([...PIPE, "examples"], true));
    expect(pipelineOf(parse(on)).examples).toEqual({ maxTokens: 600 });
    const limited = variant((d) => {
      d.setIn([...PIPE, "examples"], true);
      d.setIn([...PIPE, "examples_max_tokens"], 200);
    });
    expect(pipelineOf(parse(limited)).examples).toEqual({ maxTokens: 200 });
    const alone = configError(variant((d) => d.setIn([...PIPE, "examples_max_tokens"], 200)));
    expect(alone.path).toBe("pipelines.companies.examples_max_tokens");
    expect(alone.message).toContain("set examples: true");
  });

  it("reads a `when` on an earlier output's confidence, and names the key of a wrong bound", () => {
    const ok = pipelineOf(
      parse(
        variant((d) =>
          d.setIn([...STAGES, 1, "when"], {
            not: { output: "summary", confidence: { gte: 0.8 } },
          }),
        ),
      ),
    );
    expect(ok.stages[1]?.when).toEqual({ not: { output: "summary", confidence: { gte: 0.8 } } });

    const above = configError(
      variant((d) =>
        d.setIn([...STAGES, 1, "when"], { output: "summary", confidence: { gte: 1.5 } }),
      ),
    );
    expect(above.path).toBe("pipelines.companies.stages[1].when.confidence.gte");
    expect(above.message).toContain("a confidence is between 0 and 1");
    const empty = configError(
      variant((d) => d.setIn([...STAGES, 1, "when"], { output: "summary", confidence: {} })),
    );
    expect(empty.path).toBe("pipelines.companies.stages[1].when.confidence");
    expect(empty.message).toContain("at least one of gt, gte, lt, lte");
    const later = configError(
      variant((d) =>
        d.setIn([...STAGES, 0, "when"], { output: "industry", confidence: { lt: 0.5 } }),
      ),
    );
    expect(later.path).toBe("pipelines.companies.stages[0].when");
    expect(later.message).toContain('"industry" is not filled by an earlier stage');
  });

  it.each([
    [
      "a test beside a combinator",
      { output: "summary", is_null: false, not: { output: "summary", equals: "" } },
    ],
    ["a test without an output", { equals: "x", any: [{ output: "summary", is_null: false }] }],
  ])("rejects a `when` mixing %s, which would be silently ignored", (_label, when) => {
    const error = configError(variant((d) => d.setIn([...STAGES, 1, "when"], when)));
    expect(error.path).toBe("pipelines.companies.stages[1].when");
    expect(error.message).toContain(
      "write either {output, <test>} or exactly one of all / any / not",
    );
  });

  it("rejects duplicate stage names", () => {
    const error = configError(variant((d) => d.setIn([...STAGES, 1, "name"], "analyse")));
    expect(error.path).toBe("pipelines.companies.stages[1].name");
    expect(error.message).toContain('"analyse" is used twice');
  });

  it.each(["companies; drop table x", '"Quoted"', "a.b.c", "Companies", "1companies", ""])(
    "rejects the table name %j",
    (table) => {
      const error = configError(variant((d) => d.setIn([...PIPE, "table"], table)));
      expect(error.path).toBe("pipelines.companies.table");
      expect(error.message).toContain("must be table or schema.table, lower-case SQL identifiers");
    },
  );

  it.each([
    [["inputs", 0], "name; drop table x", "pipelines.companies.inputs[0]"],
    [["inputs", 1], '"Website"', "pipelines.companies.inputs[1]"],
    [["key"], "Id", "pipelines.companies.key"],
    [["prefix"], "x-", "pipelines.companies.prefix"],
  ])("rejects the column name at %j = %j", (at, name, path) => {
    const error = configError(variant((d) => d.setIn([...PIPE, ...at], name)));
    expect(error.path).toBe(path);
    expect(error.message).toMatch(/must be (a )?lower-case/);
  });

  it("rejects a hostile output column or pipeline name with the identifier message", () => {
    const text = BASE.replace("      employees:", '      "employees; drop table x":');
    const column = configError(text);
    expect(column.path).toBe("pipelines.companies.outputs.employees; drop table x");
    expect(column.message).toContain("must be a lower-case SQL identifier");

    const pipeline = configError(BASE.replace("  companies:", '  "Companies":'));
    expect(pipeline.path).toBe("pipelines.Companies");
    expect(pipeline.message).toContain("must be a lower-case SQL identifier");
  });

  it("rejects a column used both as input and output, or as key", () => {
    const output = configError(variant((d) => d.setIn([...PIPE, "inputs"], ["name", "industry"])));
    expect(output.path).toBe("pipelines.companies.outputs");
    expect(output.message).toContain('column "industry" is also used as inputs');
    const key = configError(variant((d) => d.setIn([...PIPE, "inputs"], ["id", "name"])));
    expect(key.path).toBe("pipelines.companies.inputs");
    expect(key.message).toContain('column "id" is also used as key');
  });

  it('rejects an output named "id" when the key is another column', () => {
    const text = variant((d) => {
      d.setIn([...PIPE, "key"], "company_id");
      d.setIn([...PIPE, "outputs", "id"], { type: "text", description: "Registry id" });
      d.setIn([...STAGES, 1, "outputs"], ["industry", "employees", "id"]);
    });
    const error = configError(text);
    expect(error.path).toBe("pipelines.companies.outputs");
    expect(error.message).toContain('an output cannot be named "id"');
  });

  it("rejects a column that collides with the state columns", () => {
    const error = configError(
      variant((d) => d.setIn([...PIPE, "inputs"], ["name", "enrichment_note"])),
    );
    expect(error.path).toBe("pipelines.companies.inputs");
    expect(error.message).toContain("collides with Gleaner's state columns");
  });

  it("rejects two pipelines on one table with the same prefix", () => {
    const text = variant((d) => {
      d.setIn(["pipelines", "people"], {
        table: "public.companies",
        inputs: ["name"],
        outputs: { ceo: { type: "text", description: "Chief executive" } },
        stages: [
          { name: "find", kind: "llm", backends: ["openai"], outputs: ["ceo"], prompt: "{{name}}" },
        ],
      });
    });
    const error = configError(text);
    expect(error.path).toBe("pipelines.people.prefix");
    expect(error.message).toContain("pipelines companies and people share table public.companies");
  });

  it("rejects invalid YAML", () => {
    const error = configError("pipelines:\n  companies: [unclosed\n");
    expect(error.path).toBe("");
    expect(error.message).toContain("config (root): not valid YAML");
  });

  it("rejects YAML that repeats a key", () => {
    const error = configError(
      BASE.replace("    table: companies\n", "    table: a\n    table: b\n"),
    );
    expect(error.message).toContain("not valid YAML: Map keys must be unique");
  });

  it("rejects an empty or missing pipelines section", () => {
    const empty = configError(variant((d) => d.set("pipelines", {})));
    expect(empty.path).toBe("pipelines");
    expect(empty.message).toContain("declare at least one pipeline");
    const missing = configError("");
    expect(missing.path).toBe("pipelines");
    expect(missing.message).toContain("is required");
  });

  it("rejects a stage of unknown kind", () => {
    const error = configError(variant((d) => d.setIn([...STAGES, 0, "kind"], "python")));
    expect(error.path).toBe("pipelines.companies.stages[0].kind");
    expect(error.message).toContain(
      "kind must be one of llm, custom, queries, search, select, crawl, extract",
    );
  });
});

describe("parseConfig: refused when it loads, naming the key (not at migrate, not later)", () => {
  it.each([
    ["pipelines.companies.lease", [...PIPE, "lease"], "90d", "must be at most 24d"],
    ["worker.poll_interval", ["worker", "poll_interval"], "30d", "must be at most 24d"],
    ["concurrency.sync_interval", ["concurrency", "sync_interval"], "25d", "must be at most 24d"],
    ["llm.backends[0].timeout", ["llm", "backends", 0, "timeout"], "25d", "must be at most 24d"],
    ["crawl.per_host_delay", ["crawl", "per_host_delay"], "25d", "must be at most 24d"],
    ["crawl.timeout", ["crawl", "timeout"], "13d", "must be at most 12d"],
    [
      "pipelines.companies.low_confidence_retry_after",
      [...PIPE, "low_confidence_retry_after"],
      "99999999999d",
      "must be at most 3650d",
    ],
    ["pipelines.companies.queue_timeout", [...PIPE, "queue_timeout"], "3651d", "at most 3650d"],
    ["pipelines.companies.retry.delays[0]", [...PIPE, "retry"], { delays: ["3651d"] }, "3650d"],
    ["search.cache_ttl", ["search", "cache_ttl"], "3651d", "must be at most 3650d"],
    ["crawl.cache_ttl", ["crawl", "cache_ttl"], "3651d", "must be at most 3650d"],
  ] as const)("a duration past what its use holds: %s", (path, at, value, message) => {
    const error = configError(variant((d) => d.setIn(at, value)));
    expect(error.path).toBe(path);
    expect(error.message).toContain(message);
  });

  it("reads batch mode, naming the key it refuses", () => {
    const config = parse(
      variant((d) => {
        d.setIn(["llm", "backends", 0, "mode"], "batch");
        d.setIn(["llm", "backends", 0, "batch_window"], "30s");
        d.setIn(["llm", "backends", 0, "batch_limit"], 100);
      }),
    );
    expect(config.backends[0]).toMatchObject({
      mode: "batch",
      batch_window_ms: 30_000,
      batch_max_requests: 100,
    });
    const mode = configError(variant((d) => d.setIn(["llm", "backends", 0, "mode"], "later")));
    expect(mode.path).toBe("llm.backends[0].mode");
    expect(mode.message).toContain("must be live or batch");
    const limit = configError(
      variant((d) => d.setIn(["llm", "backends", 0, "batch_limit"], 50_001)),
    );
    expect(limit.path).toBe("llm.backends[0].batch_limit");
  });

  it("takes the longest durations that fit", () => {
    const config = parse(
      variant((d) => {
        d.setIn([...PIPE, "lease"], "24d");
        d.setIn([...PIPE, "low_confidence_retry_after"], "3650d");
        d.setIn(["worker", "poll_interval"], "24d");
        d.setIn(["crawl", "timeout"], "12d");
      }),
    );
    expect(pipelineOf(config).leaseMs).toBe(24 * 86_400_000);
    // What a timer can hold: 2^31-1 ms.
    expect(config.worker.pollIntervalMs).toBeLessThanOrEqual(2 ** 31 - 1);
    expect(config.crawl.timeoutMs * 2).toBeLessThanOrEqual(2 ** 31 - 1);
  });

  it("refuses a duration of a crawl stage past a timer", () => {
    const text = `
search: { providers: { web: { provider: searxng, base_url: "http://127.0.0.1:8888" } } }
pipelines:
  companies:
    table: companies
    inputs: [name]
    outputs: { city: { type: text, description: The city } }
    stages:
      - { name: q, kind: queries }
      - { name: s, kind: search, provider: web }
      - { name: c, kind: crawl, row_timeout: 25d }
      - { name: x, kind: extract, outputs: [city] }
`;
    const error = configError(text);
    expect(error.path).toBe("pipelines.companies.stages[2].row_timeout");
    expect(error.message).toContain("must be at most 24d");
  });

  it.each([
    "file:///etc/passwd",
    "ftp://llm.example/v1",
    "javascript:alert(1)",
    "data:text/plain,x",
  ])("a backend base_url that is not http(s): %s", (url) => {
    const error = configError(variant((d) => d.setIn(["llm", "backends", 0, "base_url"], url)));
    expect(error.path).toBe("llm.backends[0].base_url");
    expect(error.message).toContain("must be an http or https URL");
  });

  it("a backend base_url with a user name and password", () => {
    const error = configError(
      variant((d) => d.setIn(["llm", "backends", 0, "base_url"], "https://u:pw@llm.example/v1")),
    );
    expect(error.path).toBe("llm.backends[0].base_url");
    expect(error.message).toContain("must not contain a user name or password");
  });

  it("a local search provider publishing its folder at a file: URL", () => {
    const error = configError(
      variant((d) =>
        d.set("search", {
          providers: { docs: { provider: "local", folder: "docs", base_url: "file:///srv/docs/" } },
        }),
      ),
    );
    expect(error.path).toBe("search.providers.docs.base_url");
    expect(error.message).toContain("must be an http(s) URL, not file:");
  });

  it("a custom stage whose module does not exist, resolved against the config file's folder", () => {
    const text = variant((d) => d.setIn([...STAGES, 1, "module"], "./stages/nope.ts"), FULL);
    const error = errorOf(() =>
      parseConfig(text, {
        env: { DATABASE_URL: "postgres://h/db", AZURE_OPENAI_KEY: "k-123456" },
        file: join(home, "gleaner.yaml"),
      }),
    );
    expect(error.path).toBe("pipelines.companies.stages[1].module");
    expect(error.message).toContain(`${join(home, "stages/nope.ts")} is not a file`);
    // A folder is no module either.
    const folder = variant((d) => d.setIn([...STAGES, 1, "module"], "./stages"), FULL);
    expect(
      errorOf(() =>
        parseConfig(folder, {
          env: { DATABASE_URL: "postgres://h/db", AZURE_OPENAI_KEY: "k-123456" },
          file: join(home, "gleaner.yaml"),
        }),
      ).path,
    ).toBe("pipelines.companies.stages[1].module");
  });

  it.each(["xmin", "ctid", "tableoid", "cmax"])(
    "an output column named %s (a system column)",
    (column) => {
      const text = BASE.replace("      employees:", `      ${column}:`).replace(
        "outputs: [industry, employees]",
        `outputs: [industry, ${column}]`,
      );
      const error = configError(text);
      expect(error.path).toBe("pipelines.companies.outputs");
      expect(error.message).toContain(`column "${column}" is a PostgreSQL system column`);
    },
  );

  it("an input or a key named like a system column", () => {
    expect(configError(variant((d) => d.setIn([...PIPE, "inputs", 1], "xmax"))).path).toBe(
      "pipelines.companies.inputs",
    );
    expect(configError(variant((d) => d.setIn([...PIPE, "key"], "ctid"))).path).toBe(
      "pipelines.companies.key",
    );
  });

  it.each(["enrichment_status", "enrichment_next_at", "enriched_at"])(
    "a key named like a state column: %s",
    (key) => {
      const error = configError(variant((d) => d.setIn([...PIPE, "key"], key)));
      expect(error.path).toBe("pipelines.companies.key");
      expect(error.message).toContain("collides with Gleaner's state columns");
    },
  );

  it.each([
    ["gleaner.companies", "is Gleaner's own"],
    ["graphile_worker.companies", "is Gleaner's own"],
    ["pg_catalog.companies", "belongs to PostgreSQL"],
    ["pg_toast.companies", "belongs to PostgreSQL"],
    ["information_schema.companies", "belongs to PostgreSQL"],
  ])("a table in a schema that is not the user's: %s", (table, message) => {
    const error = configError(variant((d) => d.setIn([...PIPE, "table"], table)));
    expect(error.path).toBe("pipelines.companies.table");
    expect(error.message).toContain(message);
  });

  it("a table in the schema Gleaner was given, whatever its name", () => {
    const text = variant((d) => {
      d.set("schema", "enrich");
      d.setIn([...PIPE, "table"], "enrich.companies");
    });
    expect(configError(text).path).toBe("pipelines.companies.table");
  });

  it("schema equal to worker_schema", () => {
    const error = configError(
      variant((d) => {
        d.set("schema", "jobs");
        d.set("worker_schema", "jobs");
      }),
    );
    expect(error.path).toBe("worker_schema");
    expect(error.message).toContain('is the same as schema ("jobs")');
  });

  it("a YAML alias bomb, before it expands", () => {
    const bomb = [
      'a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]',
      "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]",
      "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]",
      "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]",
      "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]",
      "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]",
      "g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]",
    ].join("\n");
    const error = configError(`${bomb}\n${BASE}`);
    expect(error.path).toBe("");
    expect(error.message).toContain("not valid YAML");
    expect(error.message).toContain("alias");
  });

  it("still takes a few aliases, as YAML anchors are meant", () => {
    const text = BASE.replace(
      "      - name: local\n        base_url: http://127.0.0.1:11434/v1\n        model: llama3.1",
      "      - name: local\n        base_url: http://127.0.0.1:11434/v1\n        model: &model llama3.1",
    ).replace(
      "    inputs: [name, website]",
      "    inputs: [name, website]\n    schedule: &every '* * * * *'",
    );
    expect(pipelineOf(parse(text)).schedule).toBe("* * * * *");
  });

  it("takes an input column named constructor (or any other Object.prototype name)", () => {
    const text = BASE.replace(
      "inputs: [name, website]",
      "inputs: [name, constructor, tostring]",
    ).replace("({{website}})", "({{constructor}})");
    expect(pipelineOf(parse(text)).inputs).toEqual(["name", "constructor", "tostring"]);
  });
});

describe("parseConfig: values from the environment in error messages", () => {
  it.each([
    ["a long value", "thirty-days-please"],
    ["a short value", "5x"],
  ])("a rejected value from ${X} is not quoted, %s neither", (_label, secret) => {
    const text = variant((d) => d.setIn([...PIPE, "lease"], "${LEASE}"));
    const error = configError(text, { ...ENV, LEASE: secret });
    expect(error.path).toBe("pipelines.companies.lease");
    expect(error.message).toContain('"${LEASE}" is not a duration');
    expect(error.message).not.toContain(`"${secret}"`);
    expect(JSON.stringify(error)).not.toContain(secret);
  });

  it("masks a value from the environment that a cross-check quotes", () => {
    const text = variant((d) => d.setIn([...STAGES, 0, "backends"], ["${BACKEND_NAME}"]));
    const error = configError(text, { ...ENV, BACKEND_NAME: "not-a-declared-backend" });
    expect(error.path).toBe("pipelines.companies.stages[0].backends");
    expect(error.message).toContain('backend "${BACKEND_NAME}" is not declared');
    expect(error.message).not.toContain("not-a-declared-backend");
  });

  it("masks a credential field written into the file when an error quotes it", () => {
    const text = variant((d) => {
      d.setIn(["llm", "backends", 0, "api_key"], "sk-literal-key-0123");
      d.setIn([...STAGES, 0, "backends"], ["sk-literal-key-0123"]);
    });
    const error = configError(text);
    expect(error.message).not.toContain("sk-literal-key-0123");
  });
});

describe("parseConfig: what the config knows as secrets", () => {
  it("collects credential fields whether written in the file or taken from the environment", () => {
    const text = variant((d) => {
      d.setIn(["llm", "backends", 0, "api_key"], "sk-literal-key-0123");
      d.setIn(["llm", "backends", 1, "headers"], {
        Authorization: "Bearer tok-header-4567",
        "X-Title": "Gleaner",
      });
      d.setIn(["llm", "backends", 1, "query"], { "api-version": "2024-10-21", key: "q-key-8901" });
      d.set("search", { providers: { web: { provider: "serper", api_key: "serper-key-2345" } } });
      d.set("database_url", "postgres://app:db-pass-6789@db.internal/gleaner");
    });
    const secrets = parse(text, { DATABASE_URL: "postgres://u:env-pass-1234@h/db" }).secrets;
    for (const secret of [
      "sk-literal-key-0123",
      "Bearer tok-header-4567",
      "tok-header-4567",
      "q-key-8901",
      "serper-key-2345",
      "db-pass-6789",
      "env-pass-1234",
    ])
      expect(secrets).toContain(secret);
    // Not credentials: masking them would blank out ordinary words.
    expect(secrets).not.toContain("Gleaner");
    expect(secrets).not.toContain("2024-10-21");
  });

  it("moves a base_url's query string into query, so the base_url it shows holds no key", () => {
    const text = variant((d) => {
      d.setIn(["llm", "backends", 1, "base_url"], "https://llm.example/v1?key=AIza-key-0123&x=1");
      d.setIn(["llm", "backends", 1, "query"], { x: "2" });
    });
    const config = parse(text);
    expect(config.backends[1]?.base_url).toBe("https://llm.example/v1");
    // What is written under query wins over the same parameter in base_url.
    expect(config.backends[1]?.query).toEqual({ key: "AIza-key-0123", x: "2" });
    expect(config.secrets).toContain("AIza-key-0123");
  });
});

describe("loadConfigFile", () => {
  it("loads the example gleaner.yaml of the repository", () => {
    const config = loadConfigFile(resolve(import.meta.dirname, "../gleaner.yaml"), ENV);
    expect(config.pipelines.length).toBeGreaterThan(0);
    expect(config.secrets).toContain(ENV.OPENAI_API_KEY);
    expect(config.backends.map((b) => b.name)).toEqual(["primary"]);
    const extract = config.pipelines[0]?.stages.find((s) => s.kind === "extract");
    expect(extract?.kind === "extract" && extract.backends).toEqual(["primary"]);
  });

  it("loads the example gleaner.yaml with no key at all: the LLM is off, the demo runs without it", () => {
    const config = loadConfigFile(resolve(import.meta.dirname, "../gleaner.yaml"), {});
    expect(config.backends).toEqual([]);
    expect(config.backendsOff).toEqual([
      { name: "primary", reason: expect.stringContaining("has no api_key") as string },
    ]);
    const extract = config.pipelines[0]?.stages.find((s) => s.kind === "extract");
    expect(extract?.kind === "extract" && extract.backends).toEqual([]);
    // A local server needs no key: with OPENAI_BASE_URL on loopback the LLM is on.
    const local = loadConfigFile(resolve(import.meta.dirname, "../gleaner.yaml"), {
      OPENAI_BASE_URL: "http://127.0.0.1:11434/v1",
    });
    expect(local.backends.map((b) => b.name)).toEqual(["primary"]);
  });

  const dir = mkdtempSync(join(tmpdir(), "gleaner-config-test-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  function write(name: string, text: string): string {
    const file = join(dir, name);
    writeFileSync(file, text);
    return file;
  }

  it("resolves paths against the config file's folder", () => {
    const file = join(home, "full.yaml");
    writeFileSync(file, FULL);
    const config = loadConfigFile(file, {
      DATABASE_URL: "postgres://h/db",
      AZURE_OPENAI_KEY: "k-123456",
    });
    expect(config.file).toBe(file);
    expect(config.embedded.dataDir).toBe(join(home, "data/pg"));
    expect(pipelineOf(config).stages[1]).toMatchObject({
      module: join(home, "stages/classify.ts"),
    });
  });

  it("puts the file name in schema, cross-check, interpolation and YAML errors", () => {
    const schema = write(
      "schema.yaml",
      variant((d) => d.setIn([...PIPE, "min_confidense"], 1)),
    );
    const crossCheck = write(
      "cross.yaml",
      variant((d) => d.setIn([...STAGES, 1, "name"], "analyse")),
    );
    const yaml = write("broken.yaml", "pipelines: [");
    for (const [file, env, path] of [
      [schema, ENV, "pipelines.companies"],
      [crossCheck, ENV, "pipelines.companies.stages[1].name"],
      [write("env.yaml", BASE), {}, "llm.backends[0].api_key"],
      [yaml, ENV, ""],
    ] as const) {
      const error = errorOf(() => loadConfigFile(file, env));
      expect(error.file).toBe(file);
      expect(error.path).toBe(path);
      expect(error.message.startsWith(`${file}: config ${path || "(root)"}: `)).toBe(true);
    }
  });

  it("says when the file cannot be read", () => {
    const missing = join(dir, "nope.yaml");
    const error = errorOf(() => loadConfigFile(missing, ENV));
    expect(error.file).toBe(missing);
    expect(error.message).toContain(`cannot read ${missing}`);
  });
});

describe("parseDuration", () => {
  it.each([
    ["250ms", 250],
    ["30s", 30_000],
    ["5m", 300_000],
    ["1h30m", 5_400_000],
    ["1.5s", 1500],
    ["2d", 172_800_000],
    [" 1m ", 60_000],
  ])("reads %j as %d ms", (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each(["", "   ", "5", "5x", "m", "1h 30m", "-5m", "5m3"])("rejects %j", (text) => {
    expect(parseDuration(text)).toBeUndefined();
  });
});

describe("parseConfig: adaptive concurrency", () => {
  it("defaults to limits shared through PostgreSQL, synced every second", () => {
    const config = parse(BASE);
    expect(config.concurrency).toEqual({
      shared: true,
      syncIntervalMs: 1000,
      increaseAbove: 0.95,
      decreaseFactor: 0.5,
    });
    expect(config.backends[0]?.min_concurrency).toBeUndefined();
  });

  it("reads the concurrency block and a backend's min_concurrency", () => {
    const config = parse(
      variant((d) => {
        d.set("concurrency", {
          shared: false,
          sync_interval: "250ms",
          increase_above: 0.9,
          decrease_factor: 0.7,
        });
        d.setIn(["llm", "backends", 0, "min_concurrency"], 2);
      }),
    );
    expect(config.concurrency).toEqual({
      shared: false,
      syncIntervalMs: 250,
      increaseAbove: 0.9,
      decreaseFactor: 0.7,
    });
    expect(config.backends[0]?.min_concurrency).toBe(2);
  });

  it("rejects a min_concurrency above max_concurrency and a decrease_factor of 1", () => {
    const above = configError(
      variant((d) => {
        d.setIn(["llm", "backends", 0, "min_concurrency"], 8);
        d.setIn(["llm", "backends", 0, "max_concurrency"], 4);
      }),
    );
    expect(above.message).toContain("llm.backends[0].min_concurrency");
    expect(above.message).toContain("above max_concurrency 4");
    const factor = configError(variant((d) => d.set("concurrency", { decrease_factor: 1 })));
    expect(factor.message).toContain("concurrency.decrease_factor");
  });
});
