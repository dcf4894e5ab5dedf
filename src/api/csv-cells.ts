/** Characters that make a spreadsheet read a cell as a formula (the OWASP CSV injection list). */
const FORMULA_START = /^[=+\-@\t\r]/;
/** A plain decimal number: a spreadsheet reads it as that number, and nothing runs. */
const PLAIN_NUMBER = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?$/i;

/**
 * A CSV cell a spreadsheet cannot run: text starting with `=`, `+`, `-`, `@`, tab or carriage
 * return gets a leading `'` (values come from the web, and `=HYPERLINK(...)` or a DDE call in a
 * result file would run when a user opens it). Plain numbers such as `-12.5` stay as they are;
 * other values pass through.
 */
export function neutraliseFormula<T>(value: T): T | string {
  if (typeof value !== "string" || !FORMULA_START.test(value) || PLAIN_NUMBER.test(value))
    return value;
  return `'${value}`;
}
