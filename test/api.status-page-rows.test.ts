import { mkdirSync } from "node:fs";
import { chromium, type Browser, type Page } from "playwright-core";
import { Registry } from "prom-client";
import { afterAll, beforeAll, expect, it } from "vitest";
import { createApiRouter } from "../src/api/api-router.ts";
import { startHttpServer } from "../src/http/start-http-server.ts";
import type { Runtime } from "../src/pipeline/runtime.ts";
import { CHROMIUM_ARGS, CHROMIUM_PATH, chromiumAvailable } from "./support/chromium.ts";
import { startHarness, type Harness } from "./support/gleaner-harness.ts";

/**
 * The status page's rows view in real Chromium: keyset pages, filters, the cell panel with its
 * evidence, review actions and reprocess, live updates over server-sent events, the bearer
 * token, and values from the web shown as text, never run. Screenshots go to test-results/.
 * Rows are written with SQL as a run would leave them; no worker runs.
 */
const run = chromiumAvailable();
let h: Harness;
let browser: Browser | undefined;
const servers: { close: () => Promise<void> }[] = [];
let url: string;
const TOKEN = "page-token-0123456789abcdef";
const HOSTILE_NAME = "<img src=x onerror=\"window.__xss='name'\">";
const HOSTILE_LABEL = "<script>window.__xss='label'</script><b>bold?</b>";

async function serve(runtime: Runtime): Promise<string> {
  const http = await startHttpServer({
    host: "127.0.0.1",
    port: 0,
    registry: new Registry(),
    database: h.app.database,
    schema: "gleaner",
    api: createApiRouter(runtime, () => {}),
  });
  servers.push(http);
  return http.url;
}

beforeAll(async () => {
  if (!run) return;
  h = await startHarness(
    "status_rows",
    `
llm:
  backends: [{ name: fake, base_url: "http://127.0.0.1:9/v1", model: fake }]
pipelines:
  items:
    table: items
    inputs: [name]
    outputs:
      label: { type: text, description: "A label" }
      size: { type: integer, description: "A size" }
    stages:
      - { name: fill, kind: llm, backends: [fake], prompt: "{{name}}", outputs: [label, size] }
`,
  );
  // 120 settled rows: every 4th label unsure (waits for review), every 10th label NULL.
  await h.query(
    `
    insert into items (name, label, size, enrichment_status, enrichment_confidence,
                       enrichment_state, enrichment_next_at)
    select case when i = 1 then $1 else 'item ' || i end, case when i % 10 = 0 then null else 'label ' || i end, i, 'done',
      case when i % 10 = 0 then 0 when i % 4 = 0 then 0.4 else 0.9 end,
      jsonb_build_object('columns', jsonb_build_object(
        'label', case when i % 10 = 0
          then jsonb_build_object('value', null, 'confidence', 0, 'stage', 'fill', 'version', 'v',
                                  'at', now(), 'reason', 'the stage found no value')
          else jsonb_build_object('value', 'label ' || i, 'stage', 'fill', 'version', 'v',
                                  'at', now(), 'origin', 'llm',
                                  'confidence', case when i % 4 = 0 then 0.4 else 0.9 end) end,
        'size', jsonb_build_object('value', i, 'confidence', 0.95, 'stage', 'fill',
                                   'version', 'v', 'at', now(), 'origin', 'llm'))),
      null
    from generate_series(1, 120) i`,
    [HOSTILE_NAME],
  );
  // Row 1 holds text from a hostile page, and the evidence fields other parts add.
  await h.query(
    `update items set label = $1,
       enrichment_state = jsonb_set(enrichment_state, '{columns,label}', $2::jsonb)
     where id = 1`,
    [
      HOSTILE_LABEL,
      JSON.stringify({
        value: HOSTILE_LABEL,
        confidence: 0.9,
        raw_confidence: 0.7,
        stage: "fill",
        version: "v",
        at: "2026-12-01T00:00:00.000Z",
        origin: "json-ld",
        rung: "structured data",
        sources: ["javascript:window.__xss='source'", "https://example.org/about"],
        quote: "<img src=x onerror=\"window.__xss='quote'\"> says so",
        fetched_at: "2026-11-30T10:00:00.000Z",
        content_hash: "sha256:abc123",
        conflicts: [{ value: "<i>other</i>", sources: ["https://other.example/"] }],
      }),
    ],
  );
  url = await serve(h.app.runtime);
  browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS });
});

afterAll(async () => {
  await browser?.close();
  for (const s of servers) await s.close();
  await h?.close();
});

const keys = (page: Page) =>
  page
    .locator('[data-testid="rows-table"] tbody tr')
    .evaluateAll((rows) =>
      rows.map((r) => (r as unknown as { dataset: Record<string, string> }).dataset.key),
    );
const cell = (page: Page, key: number, column: string) =>
  page.locator(`[data-testid="cell-${key}-${column}"]`);
const range = (from: number, to: number) =>
  Array.from({ length: to - from + 1 }, (_, i) => String(from + i));

async function openPage(): Promise<{ page: Page; alerts: string[] }> {
  const page = await browser!.newPage({ viewport: { width: 1400, height: 900 } });
  const alerts: string[] = [];
  page.on("dialog", (d) => {
    alerts.push(d.message());
    void d.dismiss();
  });
  return { page, alerts };
}

it.runIf(run)("pages, filters, opens a cell's evidence and reviews values", async () => {
  const { page, alerts } = await openPage();
  await page.goto(url + "/");
  await expect.poll(() => keys(page)).toEqual(range(1, 50));
  await expect.poll(() => page.getByTestId("rows-live").innerText()).toBe("live");

  // Keyset pages forward and back.
  await page.getByTestId("rows-next").click();
  await expect.poll(() => keys(page)).toEqual(range(51, 100));
  await page.getByTestId("rows-next").click();
  await expect.poll(() => keys(page)).toEqual(range(101, 120));
  expect(await page.getByTestId("rows-next").isDisabled()).toBe(true);
  expect(await page.getByTestId("rows-page").innerText()).toBe("page 3");
  await page.getByTestId("rows-prev").click();
  await expect.poll(() => keys(page)).toEqual(range(51, 100));

  // Filters: under review, a NULL column, a status, a confidence.
  const multiples = (n: number, except = 0) =>
    range(1, 120).filter((k) => Number(k) % n === 0 && (except === 0 || Number(k) % except !== 0));
  await page.getByTestId("filter-review").check();
  await expect.poll(() => keys(page)).toEqual(multiples(4, 10));
  expect(await page.getByTestId("rows-page").innerText()).toBe("page 1");
  expect(await cell(page, 4, "label").getAttribute("data-review")).toBe("true");
  mkdirSync("test-results", { recursive: true });
  await page.screenshot({ path: "test-results/status-page-rows-review.png", fullPage: true });
  await page.getByTestId("filter-review").uncheck();
  await page.getByTestId("filter-null").selectOption("label");
  await expect.poll(() => keys(page)).toEqual(multiples(10));
  expect(await cell(page, 10, "label").innerText()).toBe("NULL · the stage found no value");
  await page.getByTestId("filter-null").selectOption("");
  await page.getByTestId("filter-status").selectOption("failed");
  await expect.poll(() => keys(page)).toEqual([]);
  await page.getByTestId("filter-status").selectOption("");
  await page.getByTestId("filter-below").fill("0.5");
  await page.getByTestId("filter-below").dispatchEvent("change");
  await expect
    .poll(() => keys(page))
    .toEqual(range(1, 120).filter((k) => Number(k) % 4 === 0 || Number(k) % 10 === 0));
  await page.getByTestId("filter-below").fill("");
  await page.getByTestId("filter-below").dispatchEvent("change");
  await expect.poll(() => keys(page)).toEqual(range(1, 50));

  // Cells are shaded by confidence: the unsure one redder, the sure one greener.
  const rgb = async (key: number, column: string) =>
    (
      /rgb\((\d+), (\d+), (\d+)\)/.exec(
        await cell(page, key, column).evaluate(
          (td) => (td as unknown as { style: { background: string } }).style.background,
        ),
      ) ?? []
    )
      .slice(1)
      .map(Number);
  const [unsureRed, unsureGreen] = await rgb(4, "label");
  const [sureRed, sureGreen] = await rgb(3, "label");
  expect(unsureRed! - unsureGreen!).toBeGreaterThan(0);
  expect(sureGreen! - sureRed!).toBeGreaterThan(0);

  // The cell panel of the hostile row: everything shown as text, nothing run.
  await cell(page, 1, "label").click();
  const panel = page.getByTestId("cell-panel");
  await expect.poll(() => page.getByTestId("panel-value").innerText()).toBe(HOSTILE_LABEL);
  expect(await page.getByTestId("panel-origin").innerText()).toBe("json-ld");
  expect(await page.getByTestId("panel-rung").innerText()).toBe("structured data");
  expect(await page.getByTestId("panel-raw-confidence").innerText()).toBe("0.7");
  expect(await page.getByTestId("panel-content-hash").innerText()).toBe("sha256:abc123");
  expect(await page.getByTestId("panel-quote").innerText()).toContain("onerror=");
  const text = await panel.innerText();
  expect(text).toContain("<i>other</i> — https://other.example/");
  expect(text).toContain("javascript:window.__xss='source'");
  // Only the http(s) source is a link.
  const links: (string | null)[] = [];
  for (const a of await panel.locator("a").all()) links.push(await a.getAttribute("href"));
  expect(links).toEqual(["https://example.org/about"]);
  expect(await cell(page, 1, "label").innerText()).toBe(HOSTILE_LABEL);
  expect(await page.locator(`[data-testid="row-1"] td`).nth(3).innerText()).toBe(HOSTILE_NAME);
  await page.screenshot({ path: "test-results/status-page-rows-panel.png", fullPage: true });

  // Approve, edit, reject, reprocess.
  await cell(page, 4, "label").click();
  await expect.poll(() => page.getByTestId("panel-value").innerText()).toBe("label 4");
  await page.getByTestId("review-approve").click();
  await expect.poll(() => cell(page, 4, "label").getAttribute("class")).toContain("human");
  await cell(page, 8, "size").click();
  await expect.poll(() => page.getByTestId("panel-value").innerText()).toBe("8");
  await page.getByTestId("review-edit-input").fill("99");
  await page.getByTestId("review-edit-save").click();
  await expect.poll(() => cell(page, 8, "size").innerText()).toBe("99");
  await cell(page, 12, "label").click();
  await expect.poll(() => page.getByTestId("panel-value").innerText()).toBe("label 12");
  await page.getByTestId("review-reject").click();
  await expect.poll(() => cell(page, 12, "label").innerText()).toBe("NULL · rejected");
  await expect.poll(() => page.getByTestId("panel-origin").innerText()).toBe("human");
  await page.getByTestId("reprocess-2").click();
  await expect.poll(() => page.getByTestId("status-2").innerText()).toBe("pending");
  const rows = await h.query<{ id: number; label: string | null; size: number; status: string }>(
    `select id, label, size, enrichment_status as status, enrichment_state #>> '{columns,label,origin}' as origin
     from items where id in (2, 4, 8, 12) order by id`,
  );
  expect(rows).toEqual([
    { id: 2, label: "label 2", size: 2, status: "pending", origin: "llm" },
    { id: 4, label: "label 4", size: 4, status: "done", origin: "human" },
    { id: 8, label: "label 8", size: 99, status: "done", origin: "llm" },
    { id: 12, label: null, size: 12, status: "done", origin: "human" },
  ]);
  await page.screenshot({ path: "test-results/status-page-rows-reviewed.png", fullPage: true });

  // A change made elsewhere reaches the page by itself (server-sent events).
  await h.query("update items set size = 12345 where id = 3");
  await expect.poll(() => cell(page, 3, "size").innerText(), { timeout: 15_000 }).toBe("12345");

  expect(alerts).toEqual([]);
  expect(await page.evaluate(() => (globalThis as { __xss?: string }).__xss)).toBeUndefined();
  await page.close();
});

it.runIf(run)("asks for the token when tokens are configured, then reviews with it", async () => {
  const runtime = h.app.runtime;
  const tokenUrl = await serve({
    ...runtime,
    config: { ...runtime.config, api: { ...runtime.config.api, tokens: [TOKEN] } },
  });
  const { page } = await openPage();
  await page.goto(tokenUrl + "/");
  await page.locator("#token-input").waitFor({ state: "visible" });
  expect(await keys(page)).toEqual([]);
  await page.locator("#token-input").fill(TOKEN);
  await page.locator("#token-save").click();
  await expect.poll(() => keys(page)).toEqual(range(1, 50));
  await cell(page, 16, "label").click();
  await expect.poll(() => page.getByTestId("panel-value").innerText()).toBe("label 16");
  await page.getByTestId("review-approve").click();
  await expect.poll(() => cell(page, 16, "label").getAttribute("class")).toContain("human");
  await page.close();
});
