/**
 * A budget window refused a paid call: the row waits (status failed, class budget_exhausted)
 * until `resetAt`, its attempt not counted. Not a fault of the row nor of the endpoint.
 */
export class BudgetExhaustedError extends Error {
  /** ms since the epoch when the full window ends. */
  readonly resetAt: number;
  /** `pipeline:<name>` or `global`, and hour or day: which cap is reached. */
  readonly scope: string;
  readonly kind: string;

  constructor(scope: string, kind: string, capUsd: number, resetAt: number) {
    super(
      `budget exhausted: ${scope} ${kind} cap $${capUsd} reached; waiting until ${new Date(resetAt).toISOString()}`,
    );
    this.name = "BudgetExhaustedError";
    this.scope = scope;
    this.kind = kind;
    this.resetAt = resetAt;
  }
}
