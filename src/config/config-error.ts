/** A config problem: always names the key path and says what is allowed. Exit code 2. */
export class ConfigError extends Error {
  readonly path: string;
  /** The message without the file and key path: what is wrong and what to do. */
  readonly problem: string;
  readonly file: string | undefined;

  constructor(path: string, problem: string, options?: { cause?: unknown; file?: string }) {
    const where = options?.file ? `${options.file}: ` : "";
    super(`${where}config ${path === "" ? "(root)" : path}: ${problem}`, { cause: options?.cause });
    this.name = "ConfigError";
    this.path = path;
    this.problem = problem;
    this.file = options?.file;
  }
}
