import { resolve } from "node:path";
import type { OutputSpec } from "../core/output-types.ts";
import type { ColumnRules, EvalSettings } from "./config-types.ts";
import { ConfigError } from "./config-error.ts";
import type { RawEval } from "./eval-schema.ts";

const RULES_BY_TYPE: Record<string, readonly string[]> = {
  tolerance: ["integer", "numeric"],
  precision: ["date", "timestamptz"],
  synonyms: ["text", "text[]"],
};

/** A pipeline's `eval` block, checked against its outputs: each rule must fit its column's type. */
export function resolveEval(
  raw: RawEval,
  at: string,
  outputs: readonly OutputSpec[],
  baseDir: string,
): EvalSettings {
  const columns: Record<string, ColumnRules> = {};
  for (const [name, rules] of Object.entries(raw.columns)) {
    const output = outputs.find((o) => o.name === name);
    if (!output)
      throw new ConfigError(
        `${at}.columns.${name}`,
        `"${name}" is not an output of the pipeline (outputs: ${outputs.map((o) => o.name).join(", ")})`,
      );
    for (const [rule, types] of Object.entries(RULES_BY_TYPE)) {
      const given =
        rule === "synonyms"
          ? rules.synonyms.length > 0
          : rules[rule as keyof typeof rules] !== undefined;
      if (given && !types.includes(output.type))
        throw new ConfigError(
          `${at}.columns.${name}.${rule}`,
          `applies to ${types.join(" and ")} columns; ${name} is ${output.type}`,
        );
    }
    const t = rules.tolerance;
    columns[name] = {
      tolerance:
        t === undefined
          ? undefined
          : typeof t === "number"
            ? { amount: t, relative: false }
            : { amount: Number(t.slice(0, -1)) / 100, relative: true },
      precision: rules.precision,
      synonyms: rules.synonyms,
    };
  }
  const golden = raw.golden;
  return {
    // A .csv file is found relative to the config file; anything else names a table.
    golden: golden !== undefined && isCsvPath(golden) ? resolve(baseDir, golden) : golden,
    columns,
  };
}

/** A golden set given as a path ending in .csv is a file; anything else is a table. */
export function isCsvPath(golden: string): boolean {
  return /\.csv$/i.test(golden);
}
