/** An existing table that does not fit its pipeline (key not unique, an input missing, a type that cannot hold an output): exit 1 naming the column. */
export class TableContractError extends Error {
  readonly pipeline: string;
  readonly column: string | undefined;
  constructor(pipeline: string, message: string, column?: string) {
    super(`pipeline ${pipeline}: ${message}`);
    this.name = "TableContractError";
    this.pipeline = pipeline;
    this.column = column;
  }
}
