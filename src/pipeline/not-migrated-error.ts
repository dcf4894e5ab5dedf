/** A pipeline whose table or DDL is not installed yet: run `gleaner migrate`. */
export class NotMigratedError extends Error {
  readonly pipeline: string;
  constructor(pipeline: string, why: string, options?: { cause?: unknown }) {
    super(`pipeline ${pipeline} ${why}: run \`gleaner migrate\` first`, options);
    this.name = "NotMigratedError";
    this.pipeline = pipeline;
  }
}
