import { mkdirSync } from "node:fs";
import { hostname } from "node:os";
import { chromium, type Browser } from "playwright-core";
import { Registry } from "prom-client";
import { afterAll, beforeAll, expect, it } from "vitest";
import { createApiRouter } from "../src/api/api-router.ts";
import { GLEANER_VERSION } from "../src/core/gleaner-version.ts";
import { startHttpServer } from "../src/http/start-http-server.ts";
import { startScheduler, type Scheduler } from "../src/sweep/scheduler.ts";
import { startWorker } from "../src/worker/start-worker.ts";
import { CHROMIUM_ARGS, CHROMIUM_PATH, chromiumAvailable } from "./support/chromium.ts";
import {
  reply,
  rowIdsInPrompt,
  rowSection,
  startFakeLlm,
  type FakeLlm,
} from "./support/fake-llm-server.ts";
import { quietLogger, startHarness, type Harness } from "./support/gleaner-harness.ts";

/**
 * The status page in real Chromium: rows are submitted, the bars move as workers finish them,
 * a failed row's error opens, and a screenshot is kept in test-results/.
 */
const run = chromiumAvailable();
let llm: FakeLlm;
let h: Harness;
let browser: Browser | undefined;
let url: string;
let closeServer: () => Promise<void>;

beforeAll(async () => {
  if (!run) return;
  llm = await startFakeLlm();
  // Slow enough to watch: each call takes 150 ms. The row named "broken" is left out of every
  // answer, so it fails alone and (max_attempts 1) ends exhausted with its error kept.
  llm.handle((req) =>
    reply.delay(
      150,
      reply.json({
        rows: rowIdsInPrompt(req.prompt)
          .filter((id) => !rowSection(req.prompt, id).includes("broken"))
          .map((id) => ({ id, label: { value: `label ${id}`, confidence: 0.9 } })),
      }),
    ),
  );
  h = await startHarness(
    "status_page",
    `
llm:
  backends: [{ name: fake, base_url: ${llm.url}, model: fake }]
pipelines:
  items:
    table: items
    inputs: [name]
    outputs: { label: { type: text, description: "A label" } }
    batch_size: 2
    job_size: 2
    retry: { max_attempts: 1, delays: [1m] }
    stages:
      - { name: label, kind: llm, backends: [fake], prompt: "Label {{name}}", outputs: [label] }
`,
  );
  const http = await startHttpServer({
    host: "127.0.0.1",
    port: 0,
    registry: new Registry(),
    database: h.app.database,
    schema: "gleaner",
    api: createApiRouter(h.app.runtime, () => {}),
  });
  url = http.url;
  closeServer = http.close;
  browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS });
});

afterAll(async () => {
  await browser?.close();
  await closeServer?.();
  await h?.close();
  await llm?.close();
});

it.runIf(run)("shows completeness and job progress moving, and a failed row's error", async () => {
  const page = await browser!.newPage({ viewport: { width: 1100, height: 800 } });
  await page.goto(url + "/");
  await page.waitForSelector('[data-testid="completeness-items"]');

  const names = Array.from({ length: 23 }, (_, i) => ({ name: `item ${i}` }));
  names.push({ name: "broken" });
  const submitted = await fetch(url + "/v1/jobs", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ pipeline: "items", rows: names }),
  });
  expect(submitted.status).toBe(201);
  const job = (await submitted.json()) as { id: string };

  // Workers and the scheduler start only now, one job at a time, so the bars have to move.
  const worker = await startWorker({
    runtime: h.app.runtime,
    url: h.testDb.url,
    logger: quietLogger,
    concurrency: 1,
  });
  let scheduler: Scheduler | undefined;
  let stopped = false;
  try {
    scheduler = await startScheduler({
      db: h.app.database.db,
      pool: h.app.database.pool,
      config: h.app.config,
      pipelines: [h.app.runtime.pipelines.get("items")!.pipeline],
      log: () => {},
    });
    // The live worker process is listed: host, pid, version and its jobs in flight.
    const process_ = page.locator(`[data-testid="process-${hostname()}-${process.pid}"]`);
    await process_.waitFor({ timeout: 10_000 });
    const processText = await process_.innerText();
    expect(processText).toContain(`pid ${process.pid}`);
    expect(processText).toMatch(/\d+ jobs in flight/);
    expect(processText).toContain(`version ${GLEANER_VERSION}`);
    const jobBar = page.locator(`[data-testid="job-${job.id}"]`);
    await jobBar.waitFor();
    const seen: number[] = [];
    const completeness = page.locator('[data-testid="completeness-items"]');
    const deadline = Date.now() + 30_000;
    for (;;) {
      const value = Number(await completeness.getAttribute("data-value"));
      if (seen.at(-1) !== value) seen.push(value);
      const jobValue = Number(await jobBar.getAttribute("data-value"));
      if (jobValue === 1) break;
      if (Date.now() > deadline)
        throw new Error(`job bar stuck at ${jobValue}; completeness seen ${seen.join(", ")}`);
      await page.waitForTimeout(100);
    }
    // The bar moved through intermediate values on its way up, never down.
    await page.waitForFunction(
      `document.querySelector('[data-testid="completeness-items"]')?.getAttribute("data-value") === "${23 / 24}"`,
      undefined,
      { timeout: 10_000 },
    );
    seen.push(23 / 24);
    expect(seen.some((v) => v > 0 && v < 23 / 24)).toBe(true);
    expect([...seen].sort((a, b) => a - b)).toEqual(seen);

    // The failed row's error opens on click.
    const failure = page.locator('[data-testid^="failure-items-"]');
    await failure.waitFor({ timeout: 10_000 });
    await failure.locator("summary").click();
    await expect.poll(() => failure.locator("pre").innerText()).toMatch(/missing/);
    // It stays open across the page's next refresh.
    await page.waitForTimeout(2500);
    expect(await failure.getAttribute("open")).not.toBeNull();
    expect(await failure.locator("summary").innerText()).toMatch(/exhausted, invalid_output/);

    // A stopped worker unregisters and leaves the list.
    await worker.stop();
    stopped = true;
    await page.locator("#processes").getByText("no live worker processes").waitFor();

    mkdirSync("test-results", { recursive: true });
    await page.screenshot({ path: "test-results/status-page.png", fullPage: true });
  } finally {
    await scheduler?.stop();
    if (!stopped) await worker.stop();
  }
});
