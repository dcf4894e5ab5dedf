import type { Db } from "../db/connect-database.ts";
import { rereadClaimedRows } from "../sql/start-claimed-rows.ts";
import { writeRowStates, type RowWrite } from "../sql/write-row-states.ts";
import type { InstalledPipeline } from "./installed-pipeline.ts";
import type { RowSnapshot } from "./row-state.ts";

/**
 * Writes a job's rows through the claim + xmin guard, and keeps the job's snapshots current.
 * When a row changed underneath (a user wrote to it), it is re-read and the write recomputed
 * from the fresh snapshot; when the claim is gone, the row is dropped from the job. All writes
 * of one job go through one queue, so the lease renewal never races a stage checkpoint.
 */
export class GuardedWriter {
  readonly rows = new Map<string, RowSnapshot>();
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly db: Db,
    private readonly pipeline: InstalledPipeline,
    private readonly claim: string,
    snapshots: readonly RowSnapshot[],
  ) {
    for (const s of snapshots) this.rows.set(s.key, s);
  }

  /** Rows no longer held by this job (taken back or reset meanwhile). */
  readonly lost = new Set<string>();

  write(
    keys: readonly string[],
    build: (row: RowSnapshot) => RowWrite,
    final: boolean,
  ): Promise<void> {
    const next = this.queue.then(() => this.writeNow(keys, build, final));
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
  ): Promise<void> {
    let pending = keys.filter((k) => this.rows.has(k));
    for (let round = 0; pending.length > 0; round++) {
      const writes = pending.map((k) => build(this.rows.get(k) as RowSnapshot));
      const written = await writeRowStates(this.db, this.pipeline, this.claim, writes, final);
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
      const missed = pending.filter((k) => !written.has(k));
      if (missed.length === 0) break;
      if (round >= 5) {
        throw new Error(
          `pipeline ${this.pipeline.name}: rows ${missed.join(", ")} kept changing underneath the job; giving up this write`,
        );
      }
      const fresh = await rereadClaimedRows(this.db, this.pipeline, this.claim, missed);
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

  /** Waits for queued writes to finish. */
  async flush(): Promise<void> {
    await this.queue;
  }
}
