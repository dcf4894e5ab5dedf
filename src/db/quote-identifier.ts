/**
 * Quotes an identifier for DDL and PL/pgSQL bodies, the two places where bind parameters cannot
 * go (everything else uses sql.id / sql.ref). Names reaching here were validated by the config
 * schema; the check is repeated so a future caller cannot skip it.
 */
const SAFE = /^[a-z_][a-z0-9_$]{0,62}$/;

export function quoteIdent(name: string): string {
  if (!SAFE.test(name)) {
    throw new Error(`refusing unsafe SQL identifier ${JSON.stringify(name)}`);
  }
  return `"${name}"`;
}

export function quoteLiteral(text: string): string {
  return `'${text.replace(/'/g, "''")}'`;
}
