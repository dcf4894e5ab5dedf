import type { Runtime } from "../pipeline/runtime.ts";
import type { InstalledPipeline } from "../pipeline/installed-pipeline.ts";
import { insertJobRows } from "../sql/insert-job-rows.ts";
import {
  cancelJobRows,
  jobResultRows,
  jobStatusCounts,
  resumeJobRows,
  type JobResultRow,
} from "../sql/job-row-states.ts";
import { ConfigError } from "../config/config-error.ts";
import { createAdhocPipeline, type AdhocRequest } from "../pipeline/adhoc-pipelines.ts";
import { ApiError } from "./api-error.ts";
import { jobProgress, type JobProgress } from "./job-progress.ts";

/** Submit, track, cancel and resume jobs: what the /v1/jobs routes call. */
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

  private async adhoc(request: unknown): Promise<InstalledPipeline> {
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
    let created;
    try {
      created = await createAdhocPipeline(
        this.runtime.db,
        this.runtime.config,
        r as unknown as AdhocRequest,
      );
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
    return this.jobPipeline(created.name);
  }

  /** A job's pipeline: configured, or ad-hoc (possibly created by another process). */
  private async jobPipeline(name: string): Promise<InstalledPipeline> {
    const entry = await this.runtime.ensurePipeline(name);
    if (!entry)
      throw new ApiError(404, `the job's pipeline ${name} no longer exists in the config`);
    return entry.pipeline;
  }

  /** Checks every row before anything is written: which row, which key, what to do. */
  validateRows(p: InstalledPipeline, rows: unknown): Record<string, unknown>[] {
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
        throw new ApiError(400, `rows[${i}] must be an object with ${p.inputs.join(", ")}`);
      const record = row as Record<string, unknown>;
      for (const key of Object.keys(record)) {
        if (!p.inputs.includes(key))
          throw new ApiError(
            400,
            `rows[${i}].${key} is not an input of pipeline ${p.name} (inputs: ${p.inputs.join(", ")})`,
          );
      }
      for (const input of p.inputs) {
        const value = record[input];
        if (value === undefined)
          throw new ApiError(
            400,
            `rows[${i}].${input} is missing: every row gives ${p.inputs.join(", ")}`,
          );
        if (value !== null && !["string", "number", "boolean"].includes(typeof value))
          throw new ApiError(400, `rows[${i}].${input} must be a string, number, boolean or null`);
      }
      return record;
    });
  }

  /**
   * Submits rows to a configured pipeline, or, for an ad-hoc request, to a pipeline created for
   * this job alone (validated like one in gleaner.yaml; a bad request is a 400 naming the key).
   */
  async create(pipelineName: unknown, rows: unknown, request?: unknown): Promise<JobProgress> {
    const p = request === undefined ? this.pipeline(pipelineName) : await this.adhoc(request);
    const valid = this.validateRows(p, rows);
    const db = this.runtime.db;
    const job = await db
      .transaction()
      .execute(async (trx) => {
        const created = await trx
          .withSchema(this.schema)
          .insertInto("api_jobs")
          .values({ pipeline: p.name, total: valid.length, cancelled_at: null, resumed_at: null })
          .returningAll()
          .executeTakeFirstOrThrow();
        await insertJobRows(trx, this.schema, p, created.id, valid);
        return created;
      })
      .catch((error: { code?: string; message: string }) => {
        // invalid_text_representation and friends: a value the column's type cannot hold.
        if (error.code?.startsWith("22"))
          throw new ApiError(
            400,
            `a row does not fit table ${p.table.schema}.${p.table.name}: ${error.message}`,
            { cause: error },
          );
        throw error;
      });
    return jobProgress(job, { pending: valid.length }, null);
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
    if (!entry) return jobProgress(job, {}, null);
    const { counts, lastSettledAt } = await jobStatusCounts(
      this.runtime.db,
      this.schema,
      entry.pipeline,
      job.id,
    );
    return jobProgress(job, counts, lastSettledAt);
  }
}
