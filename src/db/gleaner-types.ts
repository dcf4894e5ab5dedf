import pg from "pg";

const INT8 = 20;
const parseInt8 = (value: string): number => Number(value);

/**
 * The type parsers of Gleaner's own pool: bigint counts as numbers (Gleaner's counts fit in a
 * double), everything else as pg parses it. Given to the pool, never set on pg's global
 * registry: importing Gleaner as a library must not change how the host application's other
 * pools (or graphile-worker's) read a bigint.
 */
export const gleanerTypes: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: "text" | "binary"): unknown =>
    oid === INT8 && format !== "binary"
      ? parseInt8
      : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
};
