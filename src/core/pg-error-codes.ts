/**
 * PostgreSQL error codes Gleaner branches on, by name (Appendix A of the PostgreSQL manual), so a
 * catch site says what it expects rather than a bare "42P01".
 */
export const PG = {
  /** A row with this key already exists. */
  UNIQUE_VIOLATION: "23505",
  /** A NOT NULL column left empty. */
  NOT_NULL_VIOLATION: "23502",
  /** The table (or view, or sequence) does not exist. */
  UNDEFINED_TABLE: "42P01",
  /** A column named in a statement does not exist. */
  UNDEFINED_COLUMN: "42703",
  /** The table already exists. */
  DUPLICATE_TABLE: "42P07",
  /** The schema does not exist. */
  INVALID_SCHEMA_NAME: "3F000",
  /** statement_timeout, or a cancel request. */
  QUERY_CANCELED: "57014",
  /** The server is shutting down (fast or immediate shutdown, pg_terminate_backend). */
  ADMIN_SHUTDOWN: "57P01",
  /** The server crashed and is restarting. */
  CRASH_SHUTDOWN: "57P02",
  /** The server is starting up or in recovery: connections are refused for now. */
  CANNOT_CONNECT_NOW: "57P03",
  /** A character that has no equivalent in the server encoding. */
  UNTRANSLATABLE_CHARACTER: "22P05",
  /** A byte sequence that is not valid in the server encoding (a NUL in text). */
  CHARACTER_NOT_IN_REPERTOIRE: "22021",
  /** Malformed input for a type (a bad Unicode escape in JSON, a non-number). */
  INVALID_TEXT_REPRESENTATION: "22P02",
  /** A number out of range for its type. */
  NUMERIC_VALUE_OUT_OF_RANGE: "22003",
  /** PL/pgSQL's no_data_found: `<schema>.review` found no such pipeline or row. */
  NO_DATA_FOUND: "P0002",
  /** A write attempted in a READ ONLY transaction. */
  READ_ONLY_SQL_TRANSACTION: "25006",
  /** A lock not granted within `lock_timeout` (or NOWAIT). */
  LOCK_NOT_AVAILABLE: "55P03",
} as const;

/** The SQLSTATE of a PostgreSQL error, when the value is one. */
export function pgErrorCode(error: unknown): string | undefined {
  if (error === null || typeof error !== "object") return undefined;
  const code = (error as { code?: unknown }).code;
  return typeof code === "string" && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

/**
 * The values of a write were refused: class 22 (data exception: too long, out of range, a
 * character the server cannot store) or class 23 (a constraint of the table: check, unique,
 * not null). Writing the same values again cannot help; other values may.
 */
export function isValueRefused(error: unknown): boolean {
  const code = pgErrorCode(error);
  return code !== undefined && (code.startsWith("22") || code.startsWith("23"));
}

const CONNECTION_CODES: ReadonlySet<string> = new Set([
  PG.ADMIN_SHUTDOWN,
  PG.CRASH_SHUTDOWN,
  PG.CANNOT_CONNECT_NOW,
  // Class 08: connection exceptions.
  "08000",
  "08003",
  "08006",
  "08001",
  "08004",
]);
const NODE_CONNECTION_CODES: ReadonlySet<string> = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
]);

/**
 * True when the error says the database could not be reached or went away (a restart, a
 * failover, a dropped socket), as opposed to a problem with the statement: the caller waits
 * and tries again rather than giving up on the work.
 */
export function isConnectionError(error: unknown): boolean {
  for (let current: unknown = error, depth = 0; current && depth < 8; depth++) {
    if (typeof current !== "object") return false;
    const code = (current as { code?: unknown }).code;
    if (typeof code === "string" && (CONNECTION_CODES.has(code) || NODE_CONNECTION_CODES.has(code)))
      return true;
    const message = (current as { message?: unknown }).message;
    if (
      typeof message === "string" &&
      /Connection terminated|connection (?:is )?closed|Client has encountered a connection error|timeout exceeded when trying to connect|Client was closed/i.test(
        message,
      )
    )
      return true;
    current = (current as { cause?: unknown }).cause;
  }
  return false;
}
