import { coerceError } from "../core/coerce-error.ts";
import { isValueRefused, PG, pgErrorCode } from "../core/pg-error-codes.ts";
import { STATUSES, type RowStatus } from "../db/pipeline-ddl.ts";
import type { InstalledPipeline } from "../pipeline/installed-pipeline.ts";
import type { RowState } from "../pipeline/row-state.ts";
import type { Runtime } from "../pipeline/runtime.ts";
import {
  readRowsByKey,
  readRowsPage,
  readRowVersions,
  type RowsFilter,
} from "../sql/pipeline-rows.ts";
import { reprocessRows } from "../sql/reprocess-rows.ts";
import {
  readReviewQueue,
  REVIEW_ACTIONS,
  reviewValue,
  type ReviewAction,
} from "../sql/review-value.ts";
import { ApiError } from "./api-error.ts";
import type { ApiJobsService } from "./api-jobs-service.ts";
import { sendJson, type Route } from "./api-route.ts";
import { readJsonObject } from "./read-json-object.ts";

/** Rows per page of the rows view, and the most a client may ask for. */
const DEFAULT_PAGE = 50;
const MAX_PAGE = 500;
/** Rows one live-update stream may watch: a page's worth, with room. */
const MAX_WATCHED = 500;
/** How often a live-update stream looks at its rows' versions. */
const WATCH_INTERVAL_MS = 1000;

/**
 * The rows view and the review actions: one page of a pipeline's rows (keyset paging), one row
 * with its state, a review of one value, a reprocess of one row, live updates of the rows a page
 * shows, and the review queue. All go through the router's guards (token, CSRF).
 */
export function rowRoutes(runtime: Runtime, jobs: ApiJobsService): Route[] {
  const { db } = runtime;
  const schema = runtime.config.schema;
  return [
    {
      method: "GET",
      path: "/v1/pipelines/{name}/rows",
      handle: async ({ res, params, query }) => {
        const p = jobs.pipeline(params[0]);
        const limit = pageSize(query.get("limit"));
        const after = query.get("after") ?? undefined;
        const page = await readRowsPage(db, p, schema, rowsFilter(p, query), after, limit).catch(
          (error: unknown) => {
            if (isValueRefused(error))
              throw new ApiError(400, `after=${after} is not a key of ${p.name}`, { cause: error });
            throw error;
          },
        );
        sendJson(res, 200, {
          pipeline: p.name,
          key: p.key,
          inputs: p.inputs,
          outputs: p.outputs.map((o) => ({ name: o.name, type: o.type })),
          min_confidence: p.minConfidence,
          review_below: p.reviewBelow,
          ...page,
        });
      },
    },
    {
      method: "GET",
      path: "/v1/pipelines/{name}/rows/{key}",
      handle: async ({ res, params }) => {
        const p = jobs.pipeline(params[0]);
        const [row] = await readRowsByKey(db, p, schema, [params[1] as string]).catch(
          keyRefused(p, params[1]),
        );
        if (!row)
          throw new ApiError(404, `pipeline ${p.name}: no row with ${p.key} = ${params[1]}`);
        const { xmin: _xmin, state, ...rest } = row;
        sendJson(res, 200, { ...rest, state: inspectableState(state as RowState | null) });
      },
    },
    {
      method: "POST",
      path: "/v1/pipelines/{name}/rows/{key}/review",
      handle: async ({ req, res, params }) => {
        const p = jobs.pipeline(params[0]);
        const key = params[1] as string;
        const body = await readJsonObject(req, runtime.config.api.maxBodyBytes);
        const { column, action, value, by } = body;
        if (typeof column !== "string")
          throw new ApiError(400, `"column" must name an output: ${outputList(p)}`);
        if (!REVIEW_ACTIONS.includes(action as ReviewAction))
          throw new ApiError(400, `"action" must be one of ${REVIEW_ACTIONS.join(", ")}`);
        if (by !== undefined && typeof by !== "string")
          throw new ApiError(400, '"by" must be a string (who reviewed)');
        const provenance = await reviewValue(db, schema, {
          pipeline: p.name,
          key,
          column,
          action: action as ReviewAction,
          ...(Object.hasOwn(body, "value") ? { value } : {}),
          ...(by !== undefined ? { by } : {}),
        }).catch((caught: unknown) => {
          const error = coerceError(caught);
          if (pgErrorCode(error) === PG.NO_DATA_FOUND)
            throw new ApiError(404, error.message, { cause: error });
          if (isValueRefused(error)) throw new ApiError(400, error.message, { cause: error });
          throw error;
        });
        sendJson(res, 200, { pipeline: p.name, key, column, provenance });
      },
    },
    {
      method: "POST",
      path: "/v1/pipelines/{name}/rows/{key}/reprocess",
      handle: async ({ res, params }) => {
        const p = jobs.pipeline(params[0]);
        const key = params[1] as string;
        const rows = await reprocessRows(db, p, { keys: [key], reason: "reprocess button" }).catch(
          keyRefused(p, key),
        );
        if (rows === 0)
          throw new ApiError(404, `pipeline ${p.name}: no row with ${p.key} = ${key}`);
        sendJson(res, 200, { pipeline: p.name, key, reprocessed: rows });
      },
    },
    {
      method: "GET",
      path: "/v1/pipelines/{name}/row-events",
      handle: async ({ req, res, params, query }) => {
        const p = jobs.pipeline(params[0]);
        // `key` once per row, for keys that hold a comma; `keys` as a comma-separated list.
        const keys = [
          ...query.getAll("key"),
          ...(query.get("keys") ?? "").split(",").filter((k) => k !== ""),
        ];
        if (keys.length > MAX_WATCHED)
          throw new ApiError(400, `watch at most ${MAX_WATCHED} rows (key=... or keys=...)`);
        let seen = await readRowVersions(db, p, keys).catch(keyRefused(p, keys.join(",")));
        res.writeHead(200, {
          "content-type": "text/event-stream",
          "cache-control": "no-cache",
          connection: "keep-alive",
        });
        let closed = false;
        req.on("close", () => (closed = true));
        // Sent first, so a client knows the versions it compares against are taken.
        res.write(`event: ready\ndata: ${JSON.stringify({ keys: [...seen.keys()] })}\n\n`);
        while (!closed) {
          await new Promise((r) => setTimeout(r, WATCH_INTERVAL_MS));
          if (closed) break;
          const now = await readRowVersions(db, p, keys);
          const changed = [...now].filter(([k, v]) => seen.get(k) !== v).map(([k]) => k);
          seen = now;
          if (changed.length === 0) continue;
          const rows = await readRowsByKey(db, p, schema, changed);
          res.write(
            `event: rows\ndata: ${JSON.stringify(rows.map(({ xmin: _x, state: _s, ...r }) => r))}\n\n`,
          );
        }
        res.end();
      },
    },
    {
      method: "GET",
      path: "/v1/review-queue",
      handle: async ({ res, query }) => {
        const name = query.get("pipeline") ?? undefined;
        if (name !== undefined) jobs.pipeline(name);
        sendJson(res, 200, await readReviewQueue(db, schema, name, pageSize(query.get("limit"))));
      },
    },
  ];
}

function pageSize(given: string | null): number {
  const n = Number(given ?? DEFAULT_PAGE);
  return Number.isInteger(n) ? Math.min(Math.max(n, 1), MAX_PAGE) : DEFAULT_PAGE;
}

function outputList(p: InstalledPipeline): string {
  return p.outputs.map((o) => o.name).join(", ");
}

/** A key that cannot be cast to the key column's type names no row: a 400 saying so. */
function keyRefused(p: InstalledPipeline, key: string | undefined) {
  return (error: unknown): never => {
    if (isValueRefused(error))
      throw new ApiError(400, `"${key}" is not a key of ${p.name} (${p.key} is ${p.keyType})`, {
        cause: error,
      });
    throw error;
  };
}

/** The filters of the rows view, each checked against the pipeline: a 400 names the wrong one. */
function rowsFilter(p: InstalledPipeline, query: URLSearchParams): RowsFilter {
  const filter: RowsFilter = {};
  const status = query.get("status");
  if (status) {
    if (!STATUSES.includes(status as RowStatus))
      throw new ApiError(400, `status must be one of ${STATUSES.join(", ")}`);
    filter.status = status as RowStatus;
  }
  const nullColumn = query.get("null");
  if (nullColumn) {
    const columns = [...p.inputs, ...p.outputs.map((o) => o.name)];
    if (!columns.includes(nullColumn))
      throw new ApiError(400, `null must name an input or output: ${columns.join(", ")}`);
    filter.nullColumn = nullColumn;
  }
  const below = query.get("below");
  if (below) {
    const n = Number(below);
    if (!Number.isFinite(n) || n < 0 || n > 1)
      throw new ApiError(400, "below must be a confidence from 0 to 1");
    filter.below = n;
  }
  if (query.get("review") === "1" || query.get("review") === "true") filter.review = true;
  return filter;
}

/**
 * A row's state for the cell panel: what each stage answered and when, errors, resets; without
 * the stages' research data and call records, which can weigh megabytes and belong to SQL.
 */
function inspectableState(state: RowState | null) {
  if (!state) return {};
  const stages = Object.fromEntries(
    Object.entries(state.stages ?? {}).map(([name, s]) => {
      const { data: _data, calls: _calls, ...kept } = s;
      return [name, kept];
    }),
  );
  return {
    version: state.version,
    columns: state.columns ?? {},
    stages,
    errors: (state.errors ?? []).slice(-20),
    last_run: state.last_run,
    reset: state.reset,
  };
}
