import type { Runtime } from "../pipeline/runtime.ts";
import type { InstalledPipeline } from "../pipeline/installed-pipeline.ts";
import type { Transaction } from "kysely";
import type { PipelineConfig } from "../config/config-types.ts";
import { coerceError } from "../core/coerce-error.ts";
import { isValueRefused } from "../core/pg-error-codes.ts";
import type { GleanerDatabase } from "../db/database-types.ts";
import { loadInstalledPipelines } from "../pipeline/installed-pipeline.ts";
import { inputColumnTypes, insertJobRows } from "../sql/insert-job-rows.ts";
import {
  cancelJobRows,
  deleteJobRows,
  jobResultRows,
  jobStatusCounts,
  resumeJobRows,
  type JobResultRow,
} from "../sql/job-row-states.ts";
import { ConfigError } from "../config/config-error.ts";
import {
  ensureAdhocSchema,
  recordAdhocPipeline,
  resolveAdhocPipeline,
  type AdhocPipeline,
  type AdhocRequest,
} from "../pipeline/adhoc-pipelines.ts";
import { ApiError } from "./api-error.ts";
import { checkNumericInputs } from "./check-numeric-inputs.ts";
import { jobProgress, type JobProgress } from "./job-progress.ts";
import { jsonRowLabel, type RowLabel } from "./row-label.ts";

/** A job none of whose rows has run yet. */
const NOT_RUN = { lastSettledAt: null, firstStartedAt: null } as const;

/** Submit, track, cancel, resume and delete jobs: what the /v1/jobs routes call. */
export class ApiJobsService {
  constructor(private readonly runtime: Runtime) {}

  private get schema(): string {
    return this.runtime.config.schema;
  }

  pipeline(name: unknown): InstalledPipeline {
    const names = [...this.runtime.pipelines.keys()];
    if (typeof name !== "string" || name === "")
      throw new ApiError(400, `name the pipeline: "pipeline" must be one of ${names.join(", ")}`);
    const entry = this.runtime.pipelines.get(name);
    if (!entry) throw new ApiError(404, `no pipeline "${name}" (pipelines: ${names.join(", ")})`);
    return entry.pipeline;
  }

  /** Checks an ad-hoc request and resolves it to its pipeline; nothing is written yet. */
  private adhoc(request: unknown): AdhocPipeline {
    const { config } = this.runtime;
    if (config.backends.length === 0 && config.search.providers.length === 0)
      throw new ApiError(
        400,
        "ad-hoc requests need an LLM or a search provider: configure llm.backends or search.providers",
      );
    if (request === null || typeof request !== "object" || Array.isArray(request))
      throw new ApiError(
        400,
        '"request" must be {inputs: [...], outputs: {name: {type, description}}, search_context?}',
      );
    const r = request as Record<string, unknown>;
    const unknownKeys = Object.keys(r).filter(
      (k) => !["inputs", "outputs", "search_context"].includes(k),
    );
    if (unknownKeys.length > 0)
      throw new ApiError(
        400,
        `request.${unknownKeys[0]} is not allowed (allowed: inputs, outputs, search_context)`,
      );
    // Where a name becomes an object key, `__proto__` would set a prototype instead.
    const inputs: unknown[] = Array.isArray(r.inputs) ? r.inputs : [];
    const outputs =
      r.outputs !== null && typeof r.outputs === "object" ? Object.keys(r.outputs) : [];
    if (inputs.includes("__proto__") || outputs.includes("__proto__"))
      throw new ApiError(
        400,
        `request.${inputs.includes("__proto__") ? "inputs" : "outputs"}: "__proto__" cannot name a column (JavaScript reads it as an object's prototype); choose another name`,
      );
    if (JSON.stringify(r).includes("\\u0000"))
      throw new ApiError(
        400,
        "the request holds a NUL character (\\u0000), which PostgreSQL cannot store",
      );
    try {
      return resolveAdhocPipeline(config, r as unknown as AdhocRequest);
    } catch (error) {
      if (error instanceof ConfigError)
        throw new ApiError(
          400,
          error.message
            .replace(/^config pipelines\.adhoc_[0-9a-f]+\.?/, "request.")
            .replace(/^config /, "request."),
          { cause: error },
        );
      throw error;
    }
  }

  /** A job's pipeline: configured, or ad-hoc (possibly created by another process). */
  private async jobPipeline(name: string): Promise<InstalledPipeline> {
    const entry = await this.runtime.ensurePipeline(name);
    if (!entry)
      throw new ApiError(404, `the job's pipeline ${name} no longer exists in the config`);
    return entry.pipeline;
  }

  /**
   * Checks every row before anything is written: which row, which key, what to do. Rows are
   * read as own properties only, so a `__proto__` or `constructor` key is an ordinary key.
   */
  validateRows(
    p: Pick<PipelineConfig, "name" | "inputs">,
    rows: unknown,
    label: RowLabel = jsonRowLabel,
  ): Record<string, unknown>[] {
    const max = this.runtime.config.api.maxRowsPerJob;
    if (!Array.isArray(rows) || rows.length === 0)
      throw new ApiError(
        400,
        `"rows" must be a non-empty array of objects with ${p.inputs.join(", ")}`,
      );
    if (rows.length > max)
      throw new ApiError(
        413,
        `${rows.length} rows is over the limit of ${max} per job (api.max_rows_per_job); split the job`,
      );
    return rows.map((row: unknown, i) => {
      if (row === null || typeof row !== "object" || Array.isArray(row))
        throw new ApiError(400, `${label(i)} must be an object with ${p.inputs.join(", ")}`);
      const record = row as Record<string, unknown>;
      for (const key of Object.keys(record)) {
        if (!p.inputs.includes(key))
          throw new ApiError(
            400,
            `${label(i, key)} is not an input of pipeline ${p.name} (inputs: ${p.inputs.join(", ")})`,
          );
      }
      for (const input of p.inputs) {
        if (!Object.hasOwn(record, input))
          throw new ApiError(
            400,
            `${label(i, input)} is missing: every row gives ${p.inputs.join(", ")}`,
          );
        const value = record[input];
        if (value !== null && !["string", "number", "boolean"].includes(typeof value))
          throw new ApiError(400, `${label(i, input)} must be a string, number, boolean or null`);
        // JSON.parse turns 1e400 into Infinity, which JSON.stringify would turn into null.
        if (typeof value === "number" && !Number.isFinite(value))
          throw new ApiError(
            400,
            `${label(i, input)} is a number too large for JSON to hold (it overflows to ${value}); send it as a string, or fix the value`,
          );
      }
      return record;
    });
  }

  /**
   * Submits rows to a configured pipeline, or, for an ad-hoc request, to the pipeline that
   * definition stands for (validated like one in gleaner.yaml; a bad request is a 400 naming the
   * key). Identical ad-hoc requests share one pipeline; a new one is recorded and its table
   * created in the job's own transaction, so a refused job leaves nothing behind.
   */
  async create(
    pipelineName: unknown,
    rows: unknown,
    request?: unknown,
    label: RowLabel = jsonRowLabel,
  ): Promise<JobProgress> {
    if (request === undefined) {
      const p = this.pipeline(pipelineName);
      return this.insertJob(this.validateRows(p, rows, label), label, p);
    }
    const adhoc = this.adhoc(request);
    const valid = this.validateRows(adhoc.pipeline, rows, label);
    const known = await this.runtime.ensurePipeline(adhoc.name);
    if (known) return this.insertJob(valid, label, known.pipeline);
    await ensureAdhocSchema(this.runtime.db);
    const progress = await this.insertJob(valid, label, async (trx) => {
      await recordAdhocPipeline(trx, this.runtime.config, adhoc);
      const [installed] = await loadInstalledPipelines(
        trx,
        { ...this.runtime.config, pipelines: [] },
        [adhoc.pipeline],
      );
      return installed as InstalledPipeline;
    });
    // Committed: this process learns the pipeline now, the others when its rows come due.
    await this.runtime.ensurePipeline(adhoc.name);
    return progress;
  }

  /**
   * One transaction: the pipeline (`prepare` may create it), the numeric checks against the
   * table's column types, the job and its rows. Any refusal rolls all of it back.
   */
  private async insertJob(
    rows: Record<string, unknown>[],
    label: RowLabel,
    prepare:
      InstalledPipeline | ((trx: Transaction<GleanerDatabase>) => Promise<InstalledPipeline>),
  ): Promise<JobProgress> {
    let table = "";
    const job = await this.runtime.db
      .transaction()
      .execute(async (trx) => {
        const installed = typeof prepare === "function" ? await prepare(trx) : prepare;
        table = `${installed.table.schema}.${installed.table.name}`;
        checkNumericInputs(rows, await inputColumnTypes(trx, installed), label);
        const created = await trx
          .withSchema(this.schema)
          .insertInto("api_jobs")
          .values({
            pipeline: installed.name,
            total: rows.length,
            cancelled_at: null,
            resumed_at: null,
          })
          .returningAll()
          .executeTakeFirstOrThrow();
        await insertJobRows(trx, this.schema, installed, created.id, rows);
        return created;
      })
      .catch((caught: unknown) => {
        // A value the column cannot hold (class 22) or a constraint of the table refuses (23).
        if (isValueRefused(caught)) {
          const error = coerceError(caught);
          throw new ApiError(400, `a row does not fit table ${table}: ${error.message}`, {
            cause: error,
          });
        }
        throw caught;
      });
    return jobProgress(job, { pending: rows.length }, NOT_RUN);
  }

  async list(limit = 100): Promise<JobProgress[]> {
    const jobs = await this.runtime.db
      .withSchema(this.schema)
      .selectFrom("api_jobs")
      .selectAll()
      .orderBy("created_at", "desc")
      .limit(limit)
      .execute();
    return Promise.all(jobs.map((job) => this.progressOf(job)));
  }

  async get(id: string): Promise<JobProgress> {
    return this.progressOf(await this.find(id));
  }

  async result(
    id: string,
  ): Promise<{ job: JobProgress; rows: JobResultRow[]; pipeline: InstalledPipeline }> {
    const job = await this.find(id);
    const p = await this.jobPipeline(job.pipeline);
    const rows = await jobResultRows(this.runtime.db, this.schema, p, job.id);
    return { job: await this.progressOf(job), rows, pipeline: p };
  }

  cancel(id: string): Promise<JobProgress> {
    return this.change(id, { status: "cancelled", cancelled_at: new Date() }, cancelJobRows);
  }

  resume(id: string): Promise<JobProgress> {
    return this.change(id, { status: "active", resumed_at: new Date() }, resumeJobRows);
  }

  /**
   * DELETE /v1/jobs/:id: deletes the job's rows that are not done from the pipeline's table (or
   * all of them), and their links, in one transaction (src/sql/job-row-states.ts says why a
   * worker holding a row cannot bring it back). With `all`, or when no row is left, the job goes
   * too; otherwise its total becomes the rows it keeps.
   */
  async remove(
    id: string,
    which: "unfinished" | "all",
  ): Promise<{ deleted_rows: number; job: JobProgress | null }> {
    const job = await this.find(id);
    const p = await this.jobPipeline(job.pipeline);
    const { deleted, kept } = await this.runtime.db.transaction().execute(async (trx) => {
      const deleted = await deleteJobRows(trx, this.schema, p, job.id, which);
      const left = await trx
        .withSchema(this.schema)
        .selectFrom("api_job_rows")
        .select((eb) => eb.fn.countAll<string>().as("n"))
        .where("job_id", "=", job.id)
        .executeTakeFirstOrThrow();
      const kept = Number(left.n);
      if (which === "all" || kept === 0)
        await trx.withSchema(this.schema).deleteFrom("api_jobs").where("id", "=", job.id).execute();
      else
        await trx
          .withSchema(this.schema)
          .updateTable("api_jobs")
          .set({ total: kept })
          .where("id", "=", job.id)
          .execute();
      return { deleted, kept };
    });
    return {
      deleted_rows: deleted,
      job: which === "all" || kept === 0 ? null : await this.get(id),
    };
  }

  /** Cancel and resume change the job and its rows in one transaction. */
  private async change(
    id: string,
    jobChange: { status: "active" | "cancelled"; cancelled_at?: Date; resumed_at?: Date },
    changeRows: typeof cancelJobRows,
  ): Promise<JobProgress> {
    const job = await this.find(id);
    const p = await this.jobPipeline(job.pipeline);
    await this.runtime.db.transaction().execute(async (trx) => {
      await trx
        .withSchema(this.schema)
        .updateTable("api_jobs")
        .set(jobChange)
        .where("id", "=", job.id)
        .execute();
      await changeRows(trx, this.schema, p, job.id);
    });
    return this.get(id);
  }

  private async find(id: string) {
    if (!/^[0-9a-f-]{36}$/i.test(id)) throw new ApiError(404, `no job ${id}`);
    const job = await this.runtime.db
      .withSchema(this.schema)
      .selectFrom("api_jobs")
      .selectAll()
      .where("id", "=", id)
      .executeTakeFirst();
    if (!job) throw new ApiError(404, `no job ${id}`);
    return job;
  }

  private async progressOf(job: {
    id: string;
    pipeline: string;
    status: "active" | "cancelled";
    created_at: Date;
    total: number;
  }): Promise<JobProgress> {
    const entry = await this.runtime.ensurePipeline(job.pipeline);
    if (!entry) return jobProgress(job, {}, NOT_RUN);
    const { counts, ...times } = await jobStatusCounts(
      this.runtime.db,
      this.schema,
      entry.pipeline,
      job.id,
    );
    return jobProgress(job, counts, times);
  }
}
