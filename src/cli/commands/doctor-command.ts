import { existsSync } from "node:fs";
import OpenAI, { APIError } from "openai";
import { sql } from "kysely";
import { coerceError } from "../../core/coerce-error.ts";
import { maskSecrets, maskUrl } from "../../core/mask-secrets.ts";
import { connectDatabase } from "../../db/connect-database.ts";
import { pendingMigrations } from "../../db/migrate.ts";
import { loadInstalledPipelines } from "../../pipeline/installed-pipeline.ts";
import { loadCliConfig } from "../load-cli-config.ts";

/**
 * `gleaner doctor`: checks the database, every LLM backend and the browser the crawl needs, and
 * says what to fix. Every line passes through the masker: a backend's 401 body likes to quote the
 * key it refused, and a driver error the URL it could not reach.
 */
export async function doctorCommand(options: { config: string }): Promise<number> {
  const config = loadCliConfig(options.config);
  let failures = 0;
  const ok = (m: string) => console.log(`ok    ${maskSecrets(m, config.secrets)}`);
  const bad = (m: string, fix: string) => {
    failures++;
    console.log(`FAIL  ${maskSecrets(m, config.secrets)}\n      fix: ${fix}`);
  };

  ok(
    `config ${options.config}: ${config.pipelines.length} pipeline(s), ${config.backends.length} backend(s)`,
  );
  try {
    const database = await connectDatabase(config);
    try {
      const version = await sql<{
        v: string;
      }>`select current_setting('server_version') as v`.execute(database.db);
      ok(`${database.description} (PostgreSQL ${version.rows[0]?.v})`);
      const pending = await pendingMigrations(database, config.schema);
      if (pending.length > 0)
        bad(`migrations pending: ${pending.join(", ")}`, "run `gleaner migrate`");
      else ok("migrations are current");
      try {
        await loadInstalledPipelines(database.db, config);
        ok("every pipeline table is installed");
      } catch (error) {
        bad(coerceError(error).message, "run `gleaner migrate`");
      }
    } finally {
      await database.close();
    }
  } catch (error) {
    bad(
      coerceError(error).message,
      "set DATABASE_URL (or database_url) to a reachable PostgreSQL, or unset both for the embedded one",
    );
  }

  for (const b of config.backends) {
    const where = `backend ${b.name} (${maskUrl(b.base_url)})`;
    const client = new OpenAI({
      baseURL: b.base_url,
      apiKey: b.api_key ?? "unused",
      timeout: Math.min(b.timeout_ms, 15_000),
      maxRetries: 0,
      ...(b.headers ? { defaultHeaders: b.headers } : {}),
      ...(b.query ? { defaultQuery: b.query } : {}),
    });
    try {
      const models = await client.models.list();
      const ids = models.data.map((m) => m.id);
      if (ids.length > 0 && !ids.includes(b.model))
        bad(
          `${where} answers but does not list model ${b.model}`,
          `pick one of: ${ids.slice(0, 10).join(", ")}`,
        );
      else ok(`${where} answers; model ${b.model}`);
    } catch (error) {
      const status = error instanceof APIError ? (error.status as number | undefined) : undefined;
      const fix =
        status === 401 || status === 403
          ? "check the API key (api_key or the variable it reads)"
          : status === 404
            ? "check base_url: it should end where /chat/completions is appended (e.g. .../v1); some servers lack /models, which is harmless"
            : "check base_url and that the server is running and reachable";
      bad(`${where}: ${coerceError(error).message}`, fix);
    }
  }
  for (const off of config.backendsOff)
    console.log(
      `note  ${off.reason}; the stages that name it run without it (set its key to use it)`,
    );
  const renders = config.pipelines.some((p) =>
    p.stages.some((s) => s.kind === "crawl" && s.javascript !== "never"),
  );
  const endpoint = config.crawl.browser.endpoint;
  if (renders && endpoint) {
    // Connecting is the only check that means anything for a browser server: it is not ours.
    const { chromium } = await import("playwright-core");
    try {
      const browser = await chromium.connect(endpoint, { timeout: 10_000 });
      ok(
        `browser server ${maskUrl(endpoint)} (Chromium ${browser.version()}) for pages that need JavaScript`,
      );
      await browser.close();
    } catch (error) {
      bad(
        `no browser server at ${maskUrl(endpoint)} (crawl.browser.endpoint): ${coerceError(error).message.split("\n")[0]}`,
        "start the browser server, or fix crawl.browser.endpoint",
      );
    }
  } else if (renders) {
    const chromium = config.crawl.browser.executablePath;
    if (existsSync(chromium)) ok(`browser ${chromium} for pages that need JavaScript`);
    else
      bad(
        `no browser at ${chromium}: crawl stages render pages that need JavaScript`,
        "apt-get install chromium, set crawl.browser.executable_path, or set crawl.javascript: never",
      );
  }
  console.log(failures === 0 ? "all checks passed" : `${failures} check(s) failed`);
  return failures === 0 ? 0 : 1;
}
