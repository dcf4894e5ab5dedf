import cron, { type ScheduledTask } from "node-cron";
import type pg from "pg";
import { systemClock, type Clock } from "../core/clock.ts";
import { coerceError } from "../core/coerce-error.ts";
import { createFailureLog, type FailureLog } from "../core/failure-log.ts";
import type { GleanerConfig } from "../config/config-types.ts";
import type { Db } from "../db/connect-database.ts";
import type { InstalledPipeline } from "../pipeline/installed-pipeline.ts";
import { releaseDriftedRows } from "../sql/release-drifted-rows.ts";
import { listenForPendingRows } from "./listen-for-pending-rows.ts";
import { sweepPipeline, type SweepResult } from "./sweep-pipeline.ts";

export interface Scheduler {
  /** Runs one tick for a pipeline now (coalesced with a tick already running). */
  kick(pipeline: string): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Runs each pipeline's sweep on its cron schedule, and at once when the table's trigger
 * announces new pending rows (LISTEN gleaner_pending). Ticks of one pipeline never overlap in
 * a process; several processes may sweep at once (the claim query makes that safe).
 */
export async function startScheduler(options: {
  db: Db;
  pool: pg.Pool;
  config: GleanerConfig;
  pipelines: readonly InstalledPipeline[];
  log: (message: string) => void;
  onSweep?: (result: SweepResult) => void;
  listen?: boolean;
  /** The drift allowance's clock (on_version_change: reprocess); tests move it. */
  clock?: Clock;
  /** Finds a pipeline this scheduler was not started with (see Runtime.ensurePipeline). */
  resolve?: (name: string) => Promise<InstalledPipeline | undefined>;
}): Promise<Scheduler> {
  const { db, config, log } = options;
  const clock = options.clock ?? systemClock;
  const running = new Map<string, Promise<void>>();
  const again = new Set<string>();
  const byName = new Map<string, InstalledPipeline>();
  const failures = new Map<string, FailureLog>();
  const driftFailures = new Map<string, FailureLog>();

  const tasks: ScheduledTask[] = [];
  const schedule = (p: InstalledPipeline) => {
    byName.set(p.name, p);
    failures.set(p.name, createFailureLog(`sweep of ${p.name}`, log));
    driftFailures.set(p.name, createFailureLog(`drift of ${p.name}`, log));
    tasks.push(
      cron.schedule(p.schedule, () => void tick(p.name), { name: `gleaner-sweep-${p.name}` }),
    );
  };

  const tick = (name: string): Promise<void> => {
    const current = running.get(name);
    if (current) {
      // A tick is under way: run one more right after it, however many kicks arrive meanwhile.
      again.add(name);
      return current;
    }
    const pipeline = byName.get(name);
    if (!pipeline) {
      // A pipeline created after this scheduler started (an ad-hoc API job): learn it once.
      if (!options.resolve) return Promise.resolve();
      return options
        .resolve(name)
        .then((found) => {
          if (!found || byName.has(found.name)) return;
          schedule(found);
          return tick(found.name);
        })
        .catch((error: unknown) =>
          log(`cannot load pipeline ${name}: ${coerceError(error).message}`),
        );
    }
    const run = (async () => {
      try {
        do {
          again.delete(name);
          // on_version_change: reprocess — older-version rows made due at the configured rate,
          // claimed by the sweep below. Its failure must not stop the sweep.
          if (pipeline.onVersionChange === "reprocess") {
            await releaseDriftedRows(db, config.schema, pipeline, clock.now()).then(
              () => driftFailures.get(name)?.succeeded(),
              (error: unknown) => driftFailures.get(name)?.failed(error),
            );
          }
          let result: SweepResult;
          do {
            result = await sweepPipeline(db, config, pipeline);
            options.onSweep?.(result);
            // A full tick means more may be due: keep going instead of waiting a minute.
          } while (result.claimed + result.spent >= pipeline.sweepLimit);
        } while (again.has(name));
        failures.get(name)?.succeeded();
      } catch (error) {
        failures.get(name)?.failed(error);
      } finally {
        running.delete(name);
      }
    })();
    running.set(name, run);
    return run;
  };

  for (const p of options.pipelines) schedule(p);

  const listener =
    options.listen === false
      ? undefined
      : await listenForPendingRows(options.pool, {
          onNotify: (pipeline) => void tick(pipeline),
          // Notifications sent while the connection was down are lost: sweep everything once.
          onReconnect: () => {
            for (const name of byName.keys()) void tick(name);
          },
          log,
        });
  // Catch up at boot on whatever became due while nothing was running.
  for (const p of options.pipelines) void tick(p.name);

  return {
    kick: tick,
    async stop() {
      for (const task of tasks) await task.stop();
      await listener?.stop();
      await Promise.all(running.values());
    },
  };
}
