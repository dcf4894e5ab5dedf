import type { ColumnType, Generated } from "kysely";
import type { PageCacheDatabase } from "./page-cache-table.ts";

/** Kysely table interfaces for Gleaner's own schema (see migrations/). Pipeline tables belong to
 * users and are addressed by name through sql.id, so they have no interface here. */

export interface MigrationsTable {
  id: number;
  name: string;
  applied_at: Generated<Date>;
}

export interface PipelinesTable {
  name: string;
  table_schema: string;
  table_name: string;
  prefix: string;
  key_column: string;
  key_type: string;
  version: string;
  ddl_hash: string;
  /** Migration 000013: what the review function and the review queue read. */
  outputs: string[] | null;
  review_below: number | null;
  installed_at: Generated<Date>;
}

export interface RowCountsTable {
  pipeline: string;
  status: string;
  n: ColumnType<string, number | bigint, never>;
}

export interface WorkersTable {
  id: string;
  host: string;
  pid: number;
  started_at: Generated<Date>;
  heartbeat_at: Generated<Date>;
  /** graphile-worker pool ids this process runs (what jobs.locked_by holds); migration 000008. */
  pools: Generated<string[]>;
  /** The process's Gleaner version; migration 000017. */
  version: Generated<string>;
  /** graphile-worker jobs the process runs, as of its last heartbeat; migration 000017. */
  jobs_in_flight: Generated<number>;
}

export interface ApiJobsTable {
  id: Generated<string>;
  pipeline: string;
  status: Generated<"active" | "cancelled">;
  total: number;
  created_at: Generated<Date>;
  cancelled_at: Date | null;
  resumed_at: Date | null;
}

export interface ApiJobRowsTable {
  job_id: string;
  row_key: string;
}

export interface AdhocPipelinesTable {
  name: string;
  definition: unknown;
  created_at: Generated<Date>;
}

/** One row per endpoint: the fleet-wide adaptive concurrency limit (src/concurrency/). */
export interface ConcurrencyLimitsTable {
  endpoint: string;
  global_limit: number;
  min_limit: number;
  max_limit: number;
  paused_until: Date | null;
  updated_at: Generated<Date>;
}

/** One settled paid call (one row's share of it before migration 000020), or a day's roll-up. */
export interface CostLedgerTable {
  id: Generated<string>;
  at: Date;
  pipeline: string;
  stage: string;
  backend: string;
  model: string;
  /** Lines written before migration 000020: one row's share of a call. */
  row_key: string | null;
  /** The rows a call was for, sharing it equally (migrations/000020); NULL when rolled up. */
  row_keys: string[] | null;
  calls: number;
  input_tokens: number;
  output_tokens: number;
  cost_usd: number;
  mode: Generated<string>;
  rolled_up: Generated<boolean>;
}

/** Spent so far in one budget window; the row reservations lock (src/sql/budget-ledger.ts). */
export interface BudgetWindowsTable {
  scope: string;
  kind: "hour" | "day";
  window_start: Date;
  spent_usd: Generated<number>;
}

export interface BudgetReservationsTable {
  id: string;
  scope: string;
  kind: string;
  window_start: Date;
  amount_usd: number;
  expires_at: Date;
}

export interface GleanerDatabase extends PageCacheDatabase {
  adhoc_pipelines: AdhocPipelinesTable;
  api_jobs: ApiJobsTable;
  api_job_rows: ApiJobRowsTable;
  budget_reservations: BudgetReservationsTable;
  budget_windows: BudgetWindowsTable;
  cost_ledger: CostLedgerTable;
  concurrency_limits: ConcurrencyLimitsTable;
  migrations: MigrationsTable;
  pipelines: PipelinesTable;
  row_counts: RowCountsTable;
  workers: WorkersTable;
}
