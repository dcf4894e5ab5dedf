/**
 * Writes demo/golden.csv, the demo's golden set for `npm run eval`: every third organisation of
 * organisations.csv (100 rows) with its known values from truth.json; a fact no page holds is
 * left empty (not known, not scored).
 *
 *   node --import tsx demo/write-golden-set.ts
 */
import { readFileSync, writeFileSync } from "node:fs";
import { parse } from "csv-parse/sync";
import { stringify } from "csv-stringify/sync";

const DIR = new URL(".", import.meta.url);
const COLUMNS = ["industry", "founded", "employees", "city", "country"] as const;

const organisations = parse<{ name: string; domain: string }>(
  readFileSync(new URL("organisations.csv", DIR), "utf8"),
  { columns: true, skip_empty_lines: true },
);
const truth = JSON.parse(readFileSync(new URL("truth.json", DIR), "utf8")) as Record<
  string,
  Record<string, { value: string | number | null }>
>;
const rows = organisations
  .filter((_, i) => i % 3 === 0)
  .map((o) => [
    o.name,
    o.domain,
    ...COLUMNS.map((c) => {
      const value = truth[o.domain]?.[c]?.value;
      return value === null || value === undefined ? "" : String(value);
    }),
  ]);
writeFileSync(new URL("golden.csv", DIR), stringify([["name", "domain", ...COLUMNS], ...rows]));
console.log(`demo/golden.csv: ${rows.length} rows`);
