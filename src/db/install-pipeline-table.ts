import { createHash } from "node:crypto";
import { sql, type Transaction } from "kysely";
import type { PipelineConfig } from "../config/config-types.ts";
import type { GleanerDatabase } from "./database-types.ts";
import { COMPATIBLE_TYPES, PG_TYPE } from "../core/output-types.ts";
import { countersAreCurrent } from "./counters-are-current.ts";
import { lockTableForInstall } from "./lock-table-for-install.ts";
import {
  addStateColumnsSql,
  createTableSql,
  recountSql,
  stateColumnsSql,
  triggerSql,
  type TablePartition,
} from "./pipeline-ddl.ts";
import { quoteIdent } from "./quote-identifier.ts";
import { stateColumns } from "./state-columns.ts";
import { TableContractError } from "./table-contract-error.ts";

export interface ColumnInfo {
  name: string;
  type: string;
}

/**
 * Gives one pipeline's table the contract: creates the table when missing, checks the columns
 * an existing one already has, adds state columns, indexes and triggers. Skips all of it when the
 * DDL is unchanged since the last install, so `gleaner start` on a big table costs nothing.
 * Returns what it did, for the migrate command to print.
 */
export async function installPipelineTable(
  trx: Transaction<GleanerDatabase>,
  pipeline: PipelineConfig,
  gleanerSchema: string,
): Promise<"created" | "updated" | "unchanged"> {
  const partitions = await readPartitions(trx, pipeline);
  const ddl = [...stateColumnsSql(pipeline), ...triggerSql(pipeline, gleanerSchema, partitions)];
  // What <schema>.review and <schema>.review_queue read from gleaner.pipelines is hashed with
  // the DDL, so a changed review_below is written at the next start.
  const reviewed = {
    outputs: pipeline.outputs.map((o) => o.name),
    review_below: pipeline.reviewBelow,
  };
  const ddlHash = createHash("sha256")
    .update(ddl.join("\n") + JSON.stringify(reviewed))
    .digest("hex")
    .slice(0, 16);
  const known = await trx
    .withSchema(gleanerSchema)
    .selectFrom("pipelines")
    .select(["ddl_hash", "table_schema", "table_name"])
    .where("name", "=", pipeline.name)
    .executeTakeFirst();
  let columns = await readColumns(trx, pipeline);
  const unchanged =
    known?.ddl_hash === ddlHash &&
    known.table_schema === pipeline.table.schema &&
    known.table_name === pipeline.table.name &&
    columns.length > 0;
  if (unchanged) return "unchanged";

  let outcome: "created" | "updated" = "updated";
  if (columns.length === 0) {
    await sql.raw(`create schema if not exists ${quoteIdent(pipeline.table.schema)}`).execute(trx);
    await sql.raw(createTableSql(pipeline)).execute(trx);
    columns = await readColumns(trx, pipeline);
    outcome = "created";
  }
  // Readers wait only when a statement below needs them to (lock-table-for-install.ts).
  const lock = await lockTableForInstall(trx, pipeline, {
    columns: columns.map((c) => c.name),
    partitioned: partitions.length > 0,
  });
  checkColumns(pipeline, columns);
  await assertKeyIsUnique(trx, pipeline);
  // Outputs missing from an existing table are added with their declared type.
  for (const output of pipeline.outputs) {
    if (!columns.some((c) => c.name === output.name)) {
      await sql
        .raw(
          `alter table ${quoteIdent(pipeline.table.schema)}.${quoteIdent(pipeline.table.name)} add column ${quoteIdent(output.name)} ${PG_TYPE[output.type]}`,
        )
        .execute(trx);
    }
  }
  // Read before the DDL replaces the count function, under the lock: no write in between.
  const counted = await countersAreCurrent(
    trx,
    pipeline,
    gleanerSchema,
    known && { tableSchema: known.table_schema, tableName: known.table_name },
    partitions,
  );
  // Under the weaker lock every state column exists: the ALTER would add nothing and take the
  // lock that keeps readers out.
  const addColumns = addStateColumnsSql(pipeline);
  for (const statement of [...ddl, ...(counted ? [] : recountSql(pipeline, gleanerSchema))]) {
    if (lock === "share row exclusive" && statement === addColumns) continue;
    await sql.raw(statement).execute(trx);
  }
  const keyType = columns.find((c) => c.name === pipeline.key)?.type as string;
  const row = {
    name: pipeline.name,
    table_schema: pipeline.table.schema,
    table_name: pipeline.table.name,
    prefix: pipeline.prefix,
    key_column: pipeline.key,
    key_type: keyType,
    version: pipeline.version,
    ddl_hash: ddlHash,
    ...reviewed,
  };
  await trx
    .withSchema(gleanerSchema)
    .insertInto("pipelines")
    .values(row)
    .onConflict((oc) => oc.column("name").doUpdateSet({ ...row, installed_at: sql`now()` }))
    .execute();
  return outcome;
}

/**
 * The partitions of a declaratively partitioned table, every level below it (none for a plain
 * table or one not created yet): each gets the count triggers (see triggerSql).
 */
async function readPartitions(
  trx: Transaction<GleanerDatabase>,
  pipeline: PipelineConfig,
): Promise<TablePartition[]> {
  const result = await sql<TablePartition>`
    select n.nspname as schema, c.relname as name
    from pg_class root
    join pg_namespace rn on rn.oid = root.relnamespace
    cross join lateral pg_partition_tree(root.oid) tree
    join pg_class c on c.oid = tree.relid
    join pg_namespace n on n.oid = c.relnamespace
    where rn.nspname = ${pipeline.table.schema} and root.relname = ${pipeline.table.name}
      and tree.level > 0
    order by n.nspname, c.relname`.execute(trx);
  return result.rows;
}

export async function readColumns(
  trx: Transaction<GleanerDatabase>,
  pipeline: PipelineConfig,
): Promise<ColumnInfo[]> {
  const result = await sql<ColumnInfo>`
    select a.attname as name, format_type(a.atttypid, a.atttypmod) as type
    from pg_attribute a
    join pg_class c on c.oid = a.attrelid
    join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = ${pipeline.table.schema} and c.relname = ${pipeline.table.name}
      and a.attnum > 0 and not a.attisdropped`.execute(trx);
  return result.rows;
}

export function checkColumns(pipeline: PipelineConfig, columns: ColumnInfo[]): void {
  const table = `${pipeline.table.schema}.${pipeline.table.name}`;
  const has = (name: string) => columns.find((c) => c.name === name);
  if (!has(pipeline.key))
    throw new TableContractError(
      pipeline.name,
      `table ${table} has no key column "${pipeline.key}"; set pipelines.${pipeline.name}.key to its primary key`,
      pipeline.key,
    );
  for (const input of pipeline.inputs) {
    if (!has(input))
      throw new TableContractError(
        pipeline.name,
        `table ${table} has no input column "${input}" (it has: ${columns.map((c) => c.name).join(", ")})`,
        input,
      );
  }
  for (const output of pipeline.outputs) {
    const found = has(output.name);
    const base = found?.type.replace(/\(.*\)/, "");
    if (found && base && !COMPATIBLE_TYPES[output.type].includes(base))
      throw new TableContractError(
        pipeline.name,
        `column ${table}.${output.name} is ${found.type} but the config declares ${output.type}; change the config or the column`,
        output.name,
      );
  }
  const status = has(stateColumns(pipeline).status);
  if (status && status.type !== "text")
    throw new TableContractError(
      pipeline.name,
      `column ${table}.${status.name} exists with type ${status.type}; choose another pipelines.${pipeline.name}.prefix`,
      status.name,
    );
}

/** Fails unless the key column is unique: the sweep and write-back address rows by it. */
export async function assertKeyIsUnique(
  trx: Transaction<GleanerDatabase>,
  pipeline: PipelineConfig,
): Promise<void> {
  const result = await sql<{ ok: boolean }>`
    select exists (
      select 1 from pg_index i
      join pg_attribute a on a.attrelid = i.indrelid and a.attnum = i.indkey[0]
      where i.indrelid = ${`${quoteIdent(pipeline.table.schema)}.${quoteIdent(pipeline.table.name)}`}::regclass
        and i.indisunique and i.indisvalid and i.indpred is null
        and i.indnkeyatts = 1 and a.attname = ${pipeline.key}
    ) as ok`.execute(trx);
  if (!result.rows[0]?.ok)
    throw new TableContractError(
      pipeline.name,
      `key column "${pipeline.key}" of ${pipeline.table.schema}.${pipeline.table.name} has no unique index; add a primary key or unique index on it`,
      pipeline.key,
    );
}
