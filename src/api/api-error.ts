/** An error the API answers with its own status and a message written for the caller. */
export class ApiError extends Error {
  readonly status: number;
  /**
   * Answer with `Connection: close`: the request body was not read to its end (it is over the
   * limit), so the connection cannot carry another request.
   */
  readonly closeConnection: boolean;
  constructor(
    status: number,
    message: string,
    options?: { cause?: unknown; closeConnection?: boolean },
  ) {
    super(message, options);
    this.name = "ApiError";
    this.status = status;
    this.closeConnection = options?.closeConnection ?? false;
  }
}
