import { ConfigError } from "./config-error.ts";

/**
 * `${NAME}` is replaced by the environment variable NAME; an unset variable is an error naming
 * it, never an empty string (a silently empty API key or table name fails far from its cause).
 * `${NAME:-fallback}` gives an explicit fallback, `$${` writes a literal `${`.
 * Substitution runs on parsed YAML string values, so a value can never inject YAML structure.
 */
const REF = /\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

export interface Interpolated {
  value: unknown;
  /** Values that came from the environment, so logs and errors can mask them. */
  secrets: string[];
  /**
   * Every string that took at least one value from the environment, as written and as it became,
   * so a config error about it can quote what was written (`"${LEASE}"`) and never the value,
   * however short (see mask-config-error.ts).
   */
  fromEnv: { written: string; value: string }[];
}

export function interpolateEnv(value: unknown, env: NodeJS.ProcessEnv): Interpolated {
  const secrets: string[] = [];
  const fromEnv: Interpolated["fromEnv"] = [];
  const walk = (node: unknown, path: string): unknown => {
    if (typeof node === "string") {
      let tookEnv = false;
      const result = node.replace(
        REF,
        (whole, name: string | undefined, fallback: string | undefined) => {
          if (whole === "$${") return "${";
          const name_ = name as string;
          const found = env[name_];
          if (found !== undefined && found !== "") {
            secrets.push(found);
            tookEnv = true;
            return found;
          }
          if (fallback !== undefined) return fallback;
          throw new ConfigError(
            path,
            `environment variable ${name_} is not set. Set it (export ${name_}=...) or write \${${name_}:-default} to make it optional`,
          );
        },
      );
      if (tookEnv) fromEnv.push({ written: node, value: result });
      return result;
    }
    if (Array.isArray(node)) return node.map((item, i) => walk(item, `${path}[${i}]`));
    if (node !== null && typeof node === "object") {
      return Object.fromEntries(
        Object.entries(node).map(([k, v]) => [k, walk(v, path === "" ? k : `${path}.${k}`)]),
      );
    }
    return node;
  };
  return { value: walk(value, ""), secrets, fromEnv };
}
