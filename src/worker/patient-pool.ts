import pg from "pg";
import { coerceError } from "../core/coerce-error.ts";
import { isConnectionError } from "../core/pg-error-codes.ts";

/**
 * graphile-worker's pool. While the database refuses connections (restarting, failing over), a
 * `connect()` waits for it with backoff instead of failing at once: graphile-worker does not
 * await the completion of a job (a rejected completion would be lost and the job left locked),
 * so the completion of a job that finishes during an outage waits for the database instead.
 * Only the promise form waits; the callback form (graphile-worker's LISTEN client, which retries
 * on its own) is left as it is.
 */
export class PatientPool extends pg.Pool {
  readonly #patienceMs: number;

  constructor(config: pg.PoolConfig & { patienceMs: number }) {
    const { patienceMs, ...rest } = config;
    super(rest);
    this.#patienceMs = patienceMs;
  }

  override connect(): Promise<pg.PoolClient>;
  override connect(
    callback: (
      err: Error | undefined,
      client: pg.PoolClient | undefined,
      done: (release?: unknown) => void,
    ) => void,
  ): void;
  override connect(
    callback?: (
      err: Error | undefined,
      client: pg.PoolClient | undefined,
      done: (release?: unknown) => void,
    ) => void,
  ): Promise<pg.PoolClient> | void {
    if (callback) return super.connect(callback);
    return this.#connectPatiently();
  }

  async #connectPatiently(): Promise<pg.PoolClient> {
    const deadline = Date.now() + this.#patienceMs;
    for (let delay = 100; ; delay = Math.min(delay * 2, 2000)) {
      try {
        return await super.connect();
      } catch (error) {
        if (!isConnectionError(error) || this.ending || Date.now() + delay > deadline)
          throw coerceError(error);
        await new Promise((resolve) => setTimeout(resolve, delay).unref());
      }
    }
  }
}
