import { existsSync } from "node:fs";
import {
  chromium,
  type Browser,
  type BrowserContext,
  type CDPSession,
  type Page,
  type Request,
  type Route,
} from "playwright-core";
import { CrawlError, findCrawlError, SsrfRefusedError } from "./crawl-error.ts";
import { startGuardedProxy, type GuardedProxy, type ProxyRefusal } from "./browser-proxy.ts";
import { DEFAULT_USER_AGENT } from "./fetch-page.ts";
import { createSsrfGuard, parseHttpUrl, type Resolver, type SsrfGuard } from "./ssrf-guard.ts";

/**
 * The crawl stage's browser path: one Chromium (Debian's, never a downloaded one), launched on
 * first use and again after a crash, and a pool of browser contexts reused page after page.
 *
 * Each context keeps one page and navigates it from row to row: a new page costs Chromium a new
 * renderer process, which on two small cores is most of a render. Between rows the page's
 * storage and the context's cookies are cleared, and every `pageReuse` renders (or after any
 * failure) the page is replaced.
 *
 * Safety, in two layers that both use the fetch path's SSRF guard:
 * - each context routes every request (`context.route("**\/*")`): images, fonts and media are
 *   aborted, every other request's host is resolved and checked, refused ones aborted and
 *   recorded;
 * - each context's only way out is its own guarded proxy on 127.0.0.1 (browser-proxy.ts), which
 *   checks again every hop the route never sees (redirects) and connects to the checked address.
 *   A navigation whose chain reaches a refused address fails with SsrfRefusedError.
 */

// Playwright never downloads a browser here: Debian's Chromium is launched by path.
process.env.PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD ??= "1";

export const DEFAULT_CHROMIUM_PATH = "/usr/bin/chromium";

/** Headless, offline Chromium: no GPU, no QUIC (it would bypass the HTTP proxy), no phoning home. */
export const DEFAULT_CHROMIUM_ARGS: readonly string[] = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

const BLOCKED_TYPES: ReadonlySet<string> = new Set(["image", "font", "media"]);

export interface BrowserPoolOptions {
  /** Browser contexts, so pages rendered at once. Default 4. */
  size?: number;
  executablePath?: string;
  args?: readonly string[];
  /** `crawl.allow`, when no guard is given. */
  allow?: readonly string[];
  /** Tests inject one so no real DNS is asked; used when no guard is given. */
  resolver?: Resolver;
  /** Share the fetch path's guard (the crawler's); otherwise the pool makes and owns one. */
  guard?: Pick<SsrfGuard, "assertUrlAllowed">;
  userAgent?: string;
  /** Abort stylesheets too (layout rarely matters for text). Default false. */
  blockStylesheets?: boolean;
  /** Defaults of render(). */
  timeoutMs?: number;
  maxBytes?: number;
  /**
   * After DOMContentLoaded, the page counts as settled once no request ran for this long.
   * Default 100 ms: under load Playwright reports a script's fetch tens of ms late.
   */
  idleMs?: number;
  /** …or after this long in any case. Default 1 s. */
  maxIdleWaitMs?: number;
  /** Bytes the proxy lets through for one render, all requests together. Default 4 × maxBytes. */
  maxTransferBytes?: number;
  /** Renders per page before it is replaced by a fresh one. Default 100. */
  pageReuse?: number;
  /** Every socket the proxies open, with the checked address (tests prove where traffic went). */
  onUpstreamConnect?: (address: string, port: number) => void;
}

export interface RenderOptions {
  timeoutMs?: number;
  maxBytes?: number;
  userAgent?: string;
  signal?: AbortSignal;
}

export interface RefusedRequest {
  url: string;
  /** The range the address fell in (`linkLocal`, `loopback`, …) or why the URL was refused. */
  reason: string;
  address?: string;
  /** `route`: refused before Chromium sent it; `proxy`: a hop the route never sees (redirect). */
  by: "route" | "proxy";
}

export interface RenderedPage {
  url: string;
  finalUrl: string;
  /** The main document's HTTP status; 0 when there was no HTTP response. */
  status: number;
  /** The DOM after scripts ran, at most maxBytes (UTF-8). */
  html: string;
  title: string;
  truncated: boolean;
  /** Time in the browser, waiting for a free context excluded. */
  durationMs: number;
  /** Images, fonts, media (and stylesheets when blocked) aborted. */
  blockedRequests: number;
  refusedRequests: RefusedRequest[];
}

export interface BrowserPoolStats {
  size: number;
  launches: number;
  contextsCreated: number;
  /** Contexts the running browser has now (0 when none runs). */
  contextsOpen: number;
  renders: number;
  /** Renders waiting for a free context. */
  waiting: number;
}

export interface BrowserPool {
  render(url: string, options?: RenderOptions): Promise<RenderedPage>;
  stats(): BrowserPoolStats;
  /** Closes the browser and the proxies; renders in flight fail. */
  close(): Promise<void>;
}

interface RenderState {
  blocked: number;
  refused: RefusedRequest[];
  /** Every URL of the main frame's navigation chain, redirect hops included. */
  navigationUrls: Set<string>;
  inFlight: Set<Request>;
  lastActivity: number;
  /** Origins of every request made, whose storage is cleared afterwards. */
  origins: Set<string>;
  transferred: number;
  transferBudget: number;
  cutOff: boolean;
}

interface SlotPage {
  page: Page;
  cdp: CDPSession;
  uses: number;
  userAgent: string | undefined;
}

interface Slot {
  proxy: GuardedProxy;
  context: BrowserContext | undefined;
  page: SlotPage | undefined;
  state: RenderState | undefined;
}

export function createBrowserPool(options: BrowserPoolOptions = {}): BrowserPool {
  const size = Math.max(1, options.size ?? 4);
  const executablePath = options.executablePath ?? DEFAULT_CHROMIUM_PATH;
  const args = [...(options.args ?? DEFAULT_CHROMIUM_ARGS)];
  const defaultUserAgent = options.userAgent ?? DEFAULT_USER_AGENT;
  const defaults = {
    timeoutMs: options.timeoutMs ?? 15_000,
    maxBytes: options.maxBytes ?? 5 * 1024 * 1024,
  };
  const idleMs = options.idleMs ?? 100;
  const pageReuse = Math.max(1, options.pageReuse ?? 100);
  const maxIdleWaitMs = options.maxIdleWaitMs ?? 1_000;
  const ownGuard: SsrfGuard | undefined = options.guard
    ? undefined
    : createSsrfGuard({
        allow: options.allow ?? [],
        ...(options.resolver ? { resolver: options.resolver } : {}),
      });
  const guard: Pick<SsrfGuard, "assertUrlAllowed"> = options.guard ?? ownGuard!;

  let closed = false;
  let browser: Browser | undefined;
  let launching: Promise<Browser> | undefined;
  let slotsReady: Promise<Slot[]> | undefined;
  const free: Slot[] = [];
  const waiters: { resolve: (slot: Slot) => void; reject: (error: Error) => void }[] = [];
  const counters = { launches: 0, contextsCreated: 0, renders: 0 };

  function makeSlots(): Promise<Slot[]> {
    slotsReady ??= Promise.all(
      Array.from({ length: size }, async () => {
        const slot: Slot = {
          proxy: undefined as unknown as GuardedProxy,
          context: undefined,
          page: undefined,
          state: undefined,
        };
        slot.proxy = await startGuardedProxy(guard, {
          onRefused: (refusal) => recordProxyRefusal(slot, refusal),
          onUpstreamConnect: (address, port) => options.onUpstreamConnect?.(address, port),
          onBytes: (bytes) => {
            const state = slot.state;
            if (!state) return false;
            state.transferred += bytes;
            if (state.transferred <= state.transferBudget) return true;
            state.cutOff = true;
            return false;
          },
        });
        free.push(slot);
        return slot;
      }),
    );
    return slotsReady;
  }

  function recordProxyRefusal(slot: Slot, { url, error }: ProxyRefusal): void {
    slot.state?.refused.push({ url, reason: error.reason, address: error.address, by: "proxy" });
  }

  async function acquire(signal: AbortSignal | undefined): Promise<Slot> {
    await makeSlots();
    if (closed) throw new Error("the browser pool is closed");
    const slot = free.pop();
    if (slot) return slot;
    return new Promise<Slot>((resolve, reject) => {
      const waiter = {
        resolve: (s: Slot) => {
          signal?.removeEventListener("abort", onAbort);
          resolve(s);
        },
        reject,
      };
      const onAbort = () => {
        const at = waiters.indexOf(waiter);
        if (at >= 0) waiters.splice(at, 1);
        reject(abortReason(signal));
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      waiters.push(waiter);
    });
  }

  function release(slot: Slot): void {
    const waiter = waiters.shift();
    if (waiter) waiter.resolve(slot);
    else free.push(slot);
  }

  async function ensureBrowser(): Promise<Browser> {
    if (browser?.isConnected()) return browser;
    launching ??= (async () => {
      if (!existsSync(executablePath)) {
        throw new CrawlError(
          "connection",
          `no Chromium at ${executablePath} (apt-get install chromium)`,
          { url: executablePath },
        );
      }
      const launched = await chromium.launch({
        executablePath,
        args,
        headless: true,
        chromiumSandbox: false,
        handleSIGINT: false,
        handleSIGTERM: false,
        handleSIGHUP: false,
        // Contexts get their own guarded proxy; anything else the browser opens goes to a port
        // where nothing listens (discard), never to the network.
        proxy: { server: "http://127.0.0.1:9" },
      });
      counters.launches++;
      launched.on("disconnected", () => {
        if (browser === launched) browser = undefined;
      });
      if (closed) {
        await launched.close();
        throw new Error("the browser pool is closed");
      }
      browser = launched;
      return launched;
    })().finally(() => {
      launching = undefined;
    });
    return launching;
  }

  async function ensureContext(slot: Slot): Promise<BrowserContext> {
    const current = await ensureBrowser();
    if (slot.context && slot.context.browser() === current) return slot.context;
    const context = await current.newContext({
      proxy: { server: slot.proxy.server },
      userAgent: defaultUserAgent,
      serviceWorkers: "block",
      acceptDownloads: false,
      viewport: { width: 1280, height: 800 },
    });
    counters.contextsCreated++;
    context.on("close", () => {
      if (slot.context === context) slot.context = undefined;
    });
    await context.route("**/*", (route, request) => handleRoute(slot, route, request));
    slot.context = context;
    return context;
  }

  function handleRoute(slot: Slot, route: Route, request: Request): Promise<void> {
    const state = slot.state;
    // A late request of a page already closed: nothing to render it for.
    if (!state) return route.abort("blockedbyclient").catch(ignore);
    const type = request.resourceType();
    if (BLOCKED_TYPES.has(type) || (options.blockStylesheets === true && type === "stylesheet")) {
      state.blocked++;
      return route.abort("blockedbyclient").catch(ignore);
    }
    const url = request.url();
    if (url.startsWith("data:") || url.startsWith("blob:")) return route.continue().catch(ignore);
    let parsed: URL;
    try {
      parsed = parseHttpUrl(url);
    } catch {
      state.refused.push({ url, reason: "not an http(s) URL", by: "route" });
      return route.abort("blockedbyclient").catch(ignore);
    }
    return guard.assertUrlAllowed(parsed).then(
      () => route.continue().catch(ignore),
      (error: unknown) => {
        const refused = findCrawlError(error);
        if (refused instanceof SsrfRefusedError) {
          state.refused.push({
            url,
            reason: refused.reason,
            address: refused.address,
            by: "route",
          });
          return route.abort("blockedbyclient").catch(ignore);
        }
        return route.abort("namenotresolved").catch(ignore);
      },
    );
  }

  async function ensurePage(slot: Slot, context: BrowserContext): Promise<SlotPage> {
    const current = slot.page;
    if (current && !current.page.isClosed() && current.uses < pageReuse) return current;
    slot.page = undefined;
    if (current) await current.page.close().catch(ignore);
    const page = await context.newPage();
    const cdp = await context.newCDPSession(page);
    const mainFrame = page.mainFrame();
    // The listeners serve every render of this page: they act on the slot's current render.
    page.on("request", (request) => {
      const state = slot.state;
      if (!state) return;
      state.inFlight.add(request);
      state.lastActivity = performance.now();
      const requestUrl = request.url();
      if (requestUrl.startsWith("http")) state.origins.add(new URL(requestUrl).origin);
      if (request.isNavigationRequest() && request.frame() === mainFrame) {
        state.navigationUrls.add(requestUrl);
      }
    });
    const settled = (request: Request) => {
      const state = slot.state;
      if (state?.inFlight.delete(request)) state.lastActivity = performance.now();
    };
    page.on("requestfinished", settled);
    page.on("requestfailed", settled);
    page.on("close", () => {
      if (slot.page?.page === page) slot.page = undefined;
    });
    slot.page = { page, cdp, uses: 0, userAgent: undefined };
    return slot.page;
  }

  /** Leaves nothing of this render for the next row: storage, cookies, the document itself. */
  async function cleanSlot(slot: Slot, state: RenderState, healthy: boolean): Promise<void> {
    const context = slot.context;
    const current = slot.page;
    if (!context) return;
    try {
      if (current && !current.page.isClosed()) {
        if (healthy) {
          // Local storage, IndexedDB, cache storage, cookies… of every origin the page touched.
          await Promise.all(
            [...state.origins].map((origin) =>
              current.cdp.send("Storage.clearDataForOrigin", { origin, storageTypes: "all" }),
            ),
          );
          // sessionStorage lives in the tab, not in the context's storage. (A blank navigation in
          // between would also stop the row's document, but costs a renderer swap: the next
          // navigation replaces the document anyway, and its requests are still guarded.)
          await current.cdp.send("Runtime.evaluate", {
            expression: "try { sessionStorage.clear() } catch {}",
          });
        } else {
          slot.page = undefined;
          await current.page.close();
        }
      }
      await context.clearCookies();
    } catch {
      // A context that cannot be cleaned is not reused.
      slot.page = undefined;
      slot.context = undefined;
      await context.close().catch(ignore);
    }
  }

  async function render(url: string, renderOptions: RenderOptions = {}): Promise<RenderedPage> {
    const started = performance.now();
    const timeoutMs = renderOptions.timeoutMs ?? defaults.timeoutMs;
    const maxBytes = renderOptions.maxBytes ?? defaults.maxBytes;
    const { signal } = renderOptions;
    const parsed = parseHttpUrl(url);
    // Refused before a browser is even involved: the route would refuse it anyway.
    await guard.assertUrlAllowed(parsed);
    signal?.throwIfAborted();

    const slot = await acquire(signal);
    const renderStarted = performance.now();
    const state: RenderState = {
      blocked: 0,
      refused: [],
      navigationUrls: new Set(),
      inFlight: new Set(),
      lastActivity: performance.now(),
      origins: new Set(),
      transferred: 0,
      transferBudget: options.maxTransferBytes ?? 4 * maxBytes,
      cutOff: false,
    };
    let page: Page | undefined;
    let healthy = false;
    const onAbort = () => void page?.close().catch(ignore);
    try {
      const context = await ensureContext(slot);
      const slotPage = await ensurePage(slot, context);
      page = slotPage.page;
      slotPage.uses++;
      slot.state = state;
      signal?.addEventListener("abort", onAbort, { once: true });
      const userAgent = renderOptions.userAgent ?? defaultUserAgent;
      if (userAgent !== (slotPage.userAgent ?? defaultUserAgent)) {
        await page.setExtraHTTPHeaders(
          userAgent === defaultUserAgent ? {} : { "user-agent": userAgent },
        );
        slotPage.userAgent = userAgent;
      }

      let status = 0;
      let navigationError: unknown;
      try {
        const response = await page.goto(parsed.href, {
          waitUntil: "domcontentloaded",
          timeout: timeoutMs,
        });
        status = response?.status() ?? 0;
      } catch (error) {
        navigationError = error;
      }
      signal?.throwIfAborted();
      const refusedHop = state.refused.find((r) => isNavigationHop(r, state.navigationUrls));
      if (refusedHop) {
        throw new SsrfRefusedError(
          refusedHop.url,
          refusedHop.address ?? new URL(refusedHop.url).hostname,
          refusedHop.reason,
        );
      }
      if (navigationError !== undefined) throw navigationFailure(parsed.href, navigationError);

      const remaining = timeoutMs - (performance.now() - started);
      await waitForIdle(state, idleMs, Math.min(maxIdleWaitMs, Math.max(0, remaining)));
      const [content, title] = await Promise.all([page.content(), page.title()]);
      const capped = capUtf8(content, maxBytes);
      counters.renders++;
      healthy = true;
      return {
        url,
        finalUrl: page.url(),
        status,
        html: capped.text,
        title,
        truncated: capped.truncated || state.cutOff,
        durationMs: performance.now() - renderStarted,
        blockedRequests: state.blocked,
        refusedRequests: state.refused,
      };
    } catch (error) {
      if (signal?.aborted) throw abortReason(signal);
      if (error instanceof CrawlError) throw error;
      if (page?.isClosed() || !browser) {
        throw new CrawlError("connection", `the browser went away while rendering ${url}`, {
          url,
          cause: error,
        });
      }
      throw error;
    } finally {
      signal?.removeEventListener("abort", onAbort);
      slot.state = undefined;
      await cleanSlot(slot, state, healthy);
      release(slot);
    }
  }

  async function close(): Promise<void> {
    if (closed) return;
    closed = true;
    for (const waiter of waiters.splice(0)) waiter.reject(new Error("the browser pool is closed"));
    const launched = await launching?.catch(() => undefined);
    await (browser ?? launched)?.close().catch(ignore);
    browser = undefined;
    const slots = await slotsReady;
    await Promise.all((slots ?? []).map((slot) => slot.proxy.close()));
    await ownGuard?.close();
  }

  return {
    render,
    close,
    stats: () => ({
      size,
      ...counters,
      contextsOpen: browser?.isConnected() ? browser.contexts().length : 0,
      waiting: waiters.length,
    }),
  };
}

function isNavigationHop(refusal: RefusedRequest, navigationUrls: Set<string>): boolean {
  if (navigationUrls.has(refusal.url)) return true;
  // A refused CONNECT tunnel is known by its origin only.
  if (refusal.by === "proxy" && refusal.url.startsWith("https://")) {
    const origin = new URL(refusal.url).origin;
    return [...navigationUrls].some((u) => u.startsWith("https:") && new URL(u).origin === origin);
  }
  return false;
}

function navigationFailure(url: string, error: unknown): CrawlError {
  const message = error instanceof Error ? error.message : String(error);
  if (error instanceof Error && error.name === "TimeoutError") {
    return new CrawlError("timeout", `rendering ${url} timed out`, { url, cause: error });
  }
  if (message.includes("Download is starting")) {
    return new CrawlError("unsupported_type", `${url} is a download, not a page`, {
      url,
      cause: error,
    });
  }
  const code = /net::ERR_[A-Z_]+/.exec(message)?.[0] ?? "navigation failed";
  return new CrawlError("connection", `rendering ${url}: ${code}`, { url, cause: error });
}

async function waitForIdle(state: RenderState, idleMs: number, maxWaitMs: number): Promise<void> {
  const deadline = performance.now() + maxWaitMs;
  for (;;) {
    const now = performance.now();
    if (now >= deadline) return;
    if (state.inFlight.size === 0 && now - state.lastActivity >= idleMs) return;
    await new Promise((resolve) => setTimeout(resolve, Math.min(10, deadline - now)));
  }
}

/** At most maxBytes of UTF-8, cut on a character boundary. */
export function capUtf8(text: string, maxBytes: number): { text: string; truncated: boolean } {
  if (text.length <= maxBytes / 3 || Buffer.byteLength(text) <= maxBytes) {
    return { text, truncated: false };
  }
  const bytes = Buffer.from(text).subarray(0, maxBytes);
  // Drop a trailing partial character (a replacement character after decoding).
  return { text: bytes.toString("utf8").replace(/\uFFFD$/, ""), truncated: true };
}

function abortReason(signal: AbortSignal | undefined): Error {
  const reason: unknown = signal?.reason;
  return reason instanceof Error ? reason : new Error("aborted", { cause: reason });
}

function ignore(): void {}
