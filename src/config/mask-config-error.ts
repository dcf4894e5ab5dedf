import { maskSecrets } from "../core/mask-secrets.ts";
import { ConfigError } from "./config-error.ts";
import type { Interpolated } from "./interpolate-env.ts";

/**
 * A config error never shows a value that came from the environment. Values of 6 characters or
 * more are masked as everywhere (core/mask-secrets.ts); a shorter one is too common a string to
 * mask in free text, but a config error quotes the value it rejects (`"abc" is not a duration`),
 * so a quoted value that came from the environment is replaced by what the file says there
 * (`"${LEASE}" is not a duration`), whatever its length. The cause (zod's issues, which hold the
 * value) is dropped from an error that had anything masked.
 */
export function maskConfigError(
  error: ConfigError,
  fromEnv: Interpolated["fromEnv"],
  secrets: readonly string[],
): ConfigError {
  let problem = error.problem;
  // Longest first, so a value that contains another is replaced whole.
  const sources = [...fromEnv].sort((a, b) => b.value.length - a.value.length);
  for (const { written, value } of sources) {
    problem = problem.split(JSON.stringify(value)).join(JSON.stringify(written));
    problem = problem.split(`"${value}"`).join(`"${written}"`);
  }
  problem = maskSecrets(problem, secrets);
  if (problem === error.problem) return error;
  return new ConfigError(error.path, problem, error.file ? { file: error.file } : {});
}
