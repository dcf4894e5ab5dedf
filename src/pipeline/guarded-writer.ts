import { coerceError } from "../core/coerce-error.ts";
import { isValueRefused } from "../core/pg-error-codes.ts";
import type { Db } from "../db/connect-database.ts";
import { retryWhileDisconnected } from "../db/retry-while-disconnected.ts";
import { rereadClaimedRows } from "../sql/start-claimed-rows.ts";
import { writeRowStates, type RowWrite } from "../sql/write-row-states.ts";
import type { InstalledPipeline } from "./installed-pipeline.ts";
import type { RowSnapshot } from "./row-state.ts";

/**
 * Writes a job's rows through the claim + xmin guard, and keeps the job's snapshots current.
 * When a row changed underneath (a user wrote to it), it is re-read and the write recomputed
 * from the fresh snapshot; when the claim is gone, the row is dropped from the job. All writes
 * of one job go through one queue, so the lease renewal never races a stage checkpoint.
 *
 * Two failures do not fail the job:
 * - the database unreachable (a restart, a failover): the write is tried again with backoff for
 *   up to `patienceMs` — the guards make a repeated or late write harmless;
 * - a value PostgreSQL refuses (a data exception, or a constraint of the user's table): the
 *   rows are written one by one, and the row
 *   whose write is still refused gets `unstorable(row, error)` instead — its values left as they
 *   were and the reason kept — so one poison value never holds its batch-mates back, and the
 *   row's attempts run out as for any failure.
 */
export class GuardedWriter {
  readonly rows = new Map<string, RowSnapshot>();
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly db: Db,
    private readonly pipeline: InstalledPipeline,
    private readonly claim: string,
    snapshots: readonly RowSnapshot[],
    private readonly options: {
      /** How long a write waits for an unreachable database. */
      patienceMs: number;
      /** The job's signal: once aborted (shutdown), writes wait at most `afterAbortMs`. */
      signal?: AbortSignal;
      afterAbortMs?: number;
      log?: (message: string) => void;
    } = { patienceMs: 0 },
  ) {
    for (const s of snapshots) this.rows.set(s.key, s);
  }

  /** Rows no longer held by this job (taken back or reset meanwhile). */
  readonly lost = new Set<string>();

  write(
    keys: readonly string[],
    build: (row: RowSnapshot) => RowWrite,
    final: boolean,
    unstorable?: (row: RowSnapshot, error: Error) => RowWrite,
  ): Promise<void> {
    const next = this.queue.then(() => this.writeNow(keys, build, final, unstorable));
    // The queue only orders writes: each caller receives its own write's error through `next`,
    // and a failed write must not stop the ones queued after it.
    this.queue = next.then(
      () => undefined,
      () => undefined,
    );
    return next;
  }

  private async writeNow(
    keys: readonly string[],
    build: (row: RowSnapshot) => RowWrite,
    final: boolean,
    unstorable: ((row: RowSnapshot, error: Error) => RowWrite) | undefined,
  ): Promise<void> {
    let pending = keys.filter((k) => this.rows.has(k));
    for (let round = 0; pending.length > 0; round++) {
      const writes = pending.map((k) => build(this.rows.get(k) as RowSnapshot));
      const written = await this.writeSafely(writes, final, unstorable);
      const missed = pending.filter((k) => !written.has(k));
      if (missed.length === 0) break;
      if (round >= 5) {
        throw new Error(
          `pipeline ${this.pipeline.name}: rows ${missed.join(", ")} kept changing underneath the job; giving up this write`,
        );
      }
      const fresh = await this.patiently("re-reading changed rows", () =>
        rereadClaimedRows(this.db, this.pipeline, this.claim, missed),
      );
      const still = new Set(fresh.map((r) => r.key));
      for (const k of missed) {
        if (!still.has(k)) {
          this.rows.delete(k);
          this.lost.add(k);
        }
      }
      for (const r of fresh) this.rows.set(r.key, r);
      pending = fresh.map((r) => r.key);
    }
  }

  /** Writes, and records what was written in the snapshots; returns the keys written. */
  private async writeSafely(
    writes: readonly RowWrite[],
    final: boolean,
    unstorable: ((row: RowSnapshot, error: Error) => RowWrite) | undefined,
  ): Promise<Set<string>> {
    let written: Map<string, string>;
    try {
      written = await this.patiently("writing rows", () =>
        writeRowStates(this.db, this.pipeline, this.claim, writes, final),
      );
    } catch (error) {
      if (!isValueRefused(error)) throw error;
      if (writes.length > 1) {
        // Which row holds the refused value is not said: write them one by one.
        const out = new Set<string>();
        for (const w of writes)
          for (const k of await this.writeSafely([w], final, unstorable)) out.add(k);
        return out;
      }
      const one = writes[0] as RowWrite;
      const row = this.rows.get(one.key) as RowSnapshot;
      if (!unstorable) throw error;
      this.options.log?.(
        `pipeline ${this.pipeline.name}: row ${one.key}: PostgreSQL refused its values (${coerceError(error).message}); the row fails alone`,
      );
      return this.writeSafely([unstorable(row, coerceError(error))], final, undefined);
    }
    for (const w of writes) {
      const xmin = written.get(w.key);
      if (xmin === undefined) continue;
      const row = this.rows.get(w.key) as RowSnapshot;
      this.rows.set(w.key, {
        ...row,
        xmin,
        state: w.state,
        values: final && w.values ? w.values : row.values,
      });
    }
    return new Set(written.keys());
  }

  private patiently<T>(what: string, step: () => Promise<T>): Promise<T> {
    return retryWhileDisconnected(`pipeline ${this.pipeline.name}: ${what}`, step, {
      maxWaitMs: this.options.patienceMs,
      ...(this.options.signal ? { signal: this.options.signal } : {}),
      afterAbortMs: this.options.afterAbortMs ?? 0,
      ...(this.options.log ? { log: this.options.log } : {}),
    });
  }

  /** Waits for queued writes to finish. */
  async flush(): Promise<void> {
    await this.queue;
  }
}
