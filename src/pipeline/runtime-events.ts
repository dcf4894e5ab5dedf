import { EventEmitter } from "node:events";
import type { LlmAttempt } from "../llm/llm-types.ts";
import type { RowStatus } from "../db/pipeline-ddl.ts";

/**
 * What the stage machine reports as it works: the seam where metrics (and anything else that
 * watches) attach, so the machine itself knows nothing about Prometheus.
 */
export interface RuntimeEventMap {
  /** One chunk of rows went through one stage. */
  "stage:chunk": {
    pipeline: string;
    stage: string;
    kind: string;
    durationMs: number;
    ok: number;
    /** Failed rows by error class. */
    failed: Record<string, number>;
    /** Every external call made for the chunk. */
    calls: readonly LlmAttempt[];
    /** Rows whose field values were cut to fit the prompt (max_row_input_chars). */
    truncatedRows: number;
  };
  /** Rows skipped by a stage's `when`. */
  "stage:skipped": { pipeline: string; stage: string; rows: number };
  /** A row's final write for this attempt. */
  "row:settled": {
    pipeline: string;
    status: RowStatus;
    confidence: number | null;
    /** From the row becoming due (insert, reset or retry time) to now; null when unknown. */
    latencyMs: number | null;
  };
  /** A job handed rows back on shutdown. */
  "rows:released": { pipeline: string; rows: number };
  /** A search answered: from the cache, by a provider call, by joining a call in flight, or failed. */
  "search:lookup": { provider: string; outcome: "hit" | "call" | "shared" | "error" };
  /** An LLM answer cache lookup (llm.cache_ttl): served from the cache, or the backend asked. */
  "llm:cache": { backend: string; outcome: "hit" | "miss" };
  /** A page the crawl stage asked for: how it came (fetch, browser, cache) and how it ended. */
  "crawl:page": { path: "fetch" | "browser" | "cache"; outcome: string; bytes: number };
  /** A URL refused by policy before any request: robots.txt or the SSRF guard. */
  "crawl:refused": { reason: "robots" | "ssrf" };
  /** Something went wrong that costs no row its result (a search, page or LLM answer cache
   * could not be read or written…); logged. */
  "research:warning": { message: string };
  /** A job's rows were taken back or reset while it ran; its writes to them were fenced off. */
  "rows:lost": { pipeline: string; rows: number };
  /** A job could not finish (its rows come back after their lease); logged by the job. */
  "job:failed": { pipeline: string; message: string };
  /** A budget cap refused a paid call (src/budget/): its rows wait for the window to reset. */
  "budget:refused": { pipeline: string; scope: string; window: string };
  /** Jobs of dead processes deleted and their rows given back (src/sql/reap-dead-jobs.ts). */
  "jobs:reaped": { jobs: number; rows: number };
}

export class RuntimeEvents {
  private readonly emitter = new EventEmitter();

  on<K extends keyof RuntimeEventMap>(event: K, listener: (e: RuntimeEventMap[K]) => void): this {
    this.emitter.on(event, listener);
    return this;
  }

  off<K extends keyof RuntimeEventMap>(event: K, listener: (e: RuntimeEventMap[K]) => void): this {
    this.emitter.off(event, listener);
    return this;
  }

  emit<K extends keyof RuntimeEventMap>(event: K, payload: RuntimeEventMap[K]): void {
    this.emitter.emit(event, payload);
  }
}
