import { parseDocument } from "yaml";
import { coerceError } from "../core/coerce-error.ts";
import { ConfigError } from "./config-error.ts";

/**
 * Aliases a YAML file may expand. A config has no use for many; a few nested aliases of aliases
 * (a "billion laughs" file) would otherwise expand to gigabytes before any check runs.
 */
const MAX_YAML_ALIASES = 100;

/** The YAML text as plain values; a syntax error or an alias bomb is a ConfigError at the root. */
export function readYaml(text: string, file: string | undefined): unknown {
  const doc = parseDocument(text, { prettyErrors: true });
  if (doc.errors.length > 0) {
    const first = coerceError(doc.errors[0]);
    throw new ConfigError("", `not valid YAML: ${first.message}`, { cause: first, file });
  }
  try {
    return doc.toJS({ maxAliasCount: MAX_YAML_ALIASES }) as unknown;
  } catch (error) {
    // yaml throws a ReferenceError past maxAliasCount: a config problem, not a crash.
    throw new ConfigError(
      "",
      `not valid YAML: ${coerceError(error).message} (at most ${MAX_YAML_ALIASES} alias expansions)`,
      { cause: error, file },
    );
  }
}
