/** The `{{field}}` names a prompt template refers to. */
const FIELD = /\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}/g;

export function templateFields(template: string): string[] {
  return [...template.matchAll(FIELD)].map((m) => m[1] as string);
}

export function renderTemplate(template: string, values: Record<string, unknown>): string {
  return template.replace(FIELD, (_whole, name: string) => {
    const value = values[name];
    if (value === null || value === undefined) return "(unknown)";
    if (value instanceof Date) return value.toISOString();
    if (typeof value === "string") return value;
    if (typeof value === "number" || typeof value === "boolean" || typeof value === "bigint")
      return String(value);
    return JSON.stringify(value) ?? "(unknown)";
  });
}
