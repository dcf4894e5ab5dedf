import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import type { Browser, BrowserContext, CDPSession, Page, Request, Response } from "playwright-core";
import { defaultChromiumPath } from "../core/chromium-path.ts";
import { maskUrl } from "../core/mask-secrets.ts";
import { CrawlError, SsrfRefusedError } from "./crawl-error.ts";
import {
  startGuardedProxy,
  type GuardedProxy,
  type ProxyRefusal,
  type ResourceKind,
} from "./browser-proxy.ts";
import { DEFAULT_USER_AGENT } from "./fetch-page.ts";
import { createSsrfGuard, parseHttpUrl, type Resolver, type SsrfGuard } from "./ssrf-guard.ts";

/**
 * The crawl stage's browser path: one Chromium (Debian's, never a downloaded one) driven by
 * Playwright, launched on first use and again after a crash, and a pool of browser contexts
 * reused page after page.
 *
 * Playwright intercepts nothing (no `route`: pausing every request cost ~60 ms of CPU a page on
 * two cores, bench/crawl-browser.ts); the guarded proxy of each context does all the checking and
 * blocking. Each context keeps one page and navigates it from row to row: a new page costs
 * Chromium a new renderer process, most of a render. A page is read in one evaluation that waits
 * inside the page until it settled (load event, no fetch/XHR pending, DOM quiet for `idleMs`).
 * Between rows the storage of every origin the row touched, its session storage and the
 * context's cookies are cleared; every `pageReuse` renders, and after a timeout, a crash or an
 * abort, the context is replaced whole.
 *
 * `executablePath` may also be Debian's `chromium-headless-shell` (same build, no browser UI).
 *
 * Safety:
 * With `endpoint` the browser is a Playwright browser server elsewhere (a browser farm), connected
 * to instead of launched; the contexts, their proxies and everything below are the same.
 *
 * - each context's only way out is its own guarded proxy on 127.0.0.1 (browser-proxy.ts), which
 *   resolves and checks with the SSRF guard every request and every redirect hop, page scripts'
 *   included, and connects to the checked address. A navigation whose chain reaches a refused
 *   address fails with SsrfRefusedError; refused requests of the page are reported;
 * - Chromium requests no image and no web font at all, and plays no media; the proxy answers
 *   plain-HTTP requests for images, fonts and media (stylesheets when asked) with an empty 204
 *   without going upstream, and counts them;
 * - WebRTC may not send UDP around the proxy; QUIC is off; downloads, dialogs (Playwright
 *   dismisses them), pop-ups and service workers are refused;
 * - a render has one deadline for everything from the first command to the DOM; a context that
 *   missed it, crashed or was aborted is destroyed with its renderer.
 */

// Playwright never downloads a browser at run time: Debian's Chromium is launched by path
// (installs set PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1; importing Gleaner writes no environment).
// Where the default browser lives is core/chromium-path.ts (the config needs it too).
export { defaultChromiumPath } from "../core/chromium-path.ts";

/**
 * Features off. Chromium reads the last --disable-features only, so this repeats Playwright's own
 * list (which it passes before ours) and adds:
 * - site-per-process, IsolateOrigins: site isolation starts a renderer process for every
 *   navigation to another site, ~20 ms of CPU a page. Contexts still never share a process, and
 *   a context holds nothing worth stealing;
 * - WebUIOmniboxPopup, PreloadTopChromeWebUI: headless Chromium keeps the omnibox popup of each
 *   window, a WebUI page in a renderer of its own, up to date with every navigation (~15 ms);
 * - features that would phone home or do work no crawl needs.
 */
const DISABLED_FEATURES = [
  // Playwright's (playwright-core 1.65).
  "AvoidUnnecessaryBeforeUnloadCheckSync",
  "DestroyProfileOnBrowserClose",
  "HttpsUpgrades",
  "HttpsFirstBalancedModeAutoEnable",
  "LensOverlay",
  "MediaRouter",
  "PaintHolding",
  "ThirdPartyStoragePartitioning",
  "AvoidCorsURLLoaderRestartOnRedirect",
  "OptimizationHints",
  "NetworkTimeServiceQuerying",
  "AimEnabled",
  "PreconnectToSearch",
  // Ours.
  "site-per-process",
  "IsolateOrigins",
  "WebUIOmniboxPopup",
  "PreloadTopChromeWebUI",
  "Translate",
  "AutofillServerCommunication",
  "InterestFeedContentSuggestions",
  "AcceptCHFrame",
];

/**
 * Headless, offline Chromium tuned for rendering many small pages: no GPU, no phoning home, no
 * back/forward cache (it keeps the previous row's document alive), no throttling of pages that
 * are never on screen. Replaceable with `args`; the flags the pool needs are always added.
 */
export const DEFAULT_CHROMIUM_ARGS: readonly string[] = [
  "--no-sandbox",
  "--disable-gpu",
  "--no-first-run",
  "--no-default-browser-check",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--disable-extensions",
  "--disable-default-apps",
  "--disable-breakpad",
  "--disable-field-trial-config",
  "--disable-back-forward-cache",
  "--disable-background-timer-throttling",
  "--disable-backgrounding-occluded-windows",
  "--disable-renderer-backgrounding",
  "--disable-hang-monitor",
  "--disable-ipc-flooding-protection",
  "--metrics-recording-only",
  "--password-store=basic",
  "--use-mock-keychain",
  "--mute-audio",
  "--hide-scrollbars",
  "--disable-site-isolation-trials",
  // A navigation to another site would still start a renderer process (a new browsing instance)
  // per row: over the limit, Chromium reuses the context's renderer instead. Contexts never share
  // one, whatever the limit.
  "--renderer-process-limit=1",
  `--disable-features=${DISABLED_FEATURES.join(",")}`,
];

/** Flags the pool depends on, for function or for safety, whatever `args` says. */
const REQUIRED_ARGS: readonly string[] = [
  // QUIC and WebRTC's UDP would not go through an HTTP proxy.
  "--disable-quic",
  "--force-webrtc-ip-handling-policy=disable_non_proxied_udp",
  // window.open and target=_blank open nothing: a row renders in its one page.
  "--block-new-web-contents",
  // No image and no web font is requested at all, over http or https; media does not play.
  // (Playwright's own headless blink settings repeated: Chromium reads the last of these too.)
  "--blink-settings=imagesEnabled=false,primaryHoverType=2,availableHoverTypes=2,primaryPointerType=4,availablePointerTypes=4",
  "--disable-remote-fonts",
  "--autoplay-policy=user-gesture-required",
  "--window-size=1280,800",
];

/** What the proxy answers with an empty 204 (Chromium's flags keep most from being asked). */
const BLOCKED_KINDS: readonly ResourceKind[] = ["image", "font", "media"];

/**
 * How Gleaner launches Chromium, for a browser server too (`chromium.launchServer(…)`, whose
 * `wsEndpoint()` goes in `crawl.browser.endpoint`): the flags the pool depends on for safety
 * (no QUIC, no UDP around the proxy, no images or fonts) are the browser's, not the context's, so a
 * browser farm should be started with these.
 */
export function chromiumLaunchOptions(executablePath: string, args?: readonly string[]) {
  return {
    executablePath,
    args: [...(args ?? DEFAULT_CHROMIUM_ARGS), ...REQUIRED_ARGS],
    headless: true,
    chromiumSandbox: false,
    handleSIGINT: false,
    handleSIGTERM: false,
    handleSIGHUP: false,
    // Contexts get their own guarded proxy; anything else the browser opens goes to a port
    // where nothing listens (discard), never to the network.
    proxy: { server: "http://127.0.0.1:9" },
  };
}

export interface BrowserPoolOptions {
  /** Browser contexts, so pages rendered at once. Default 4. */
  size?: number;
  executablePath?: string;
  /**
   * A Playwright browser server to connect to (`ws://…`, `crawl.browser.endpoint`) instead of
   * launching Chromium here. Its contexts are still made by this pool, each with its guarded
   * proxy, so every request the remote browser makes for a row comes back through the SSRF guard.
   */
  endpoint?: string;
  /** Where the guarded proxies listen and the browser reaches them. Default 127.0.0.1. */
  proxyHost?: string;
  /** Flags in place of DEFAULT_CHROMIUM_ARGS (the ones the pool needs are always added). */
  args?: readonly string[];
  /** `crawl.allow`, when no guard is given. */
  allow?: readonly string[];
  /** Tests inject one so no real DNS is asked; used when no guard is given. */
  resolver?: Resolver;
  /** Share the fetch path's guard (the crawler's); otherwise the pool makes and owns one. */
  guard?: Pick<SsrfGuard, "assertUrlAllowed">;
  userAgent?: string;
  /** Fail stylesheets too (layout rarely matters for text). Default false. */
  blockStylesheets?: boolean;
  /** Defaults of render(). */
  timeoutMs?: number;
  maxBytes?: number;
  /**
   * After the load event, the page counts as settled once none of its fetch/XHR requests is
   * pending and its DOM has not changed for this long (measured inside the page). Default 50 ms.
   */
  idleMs?: number;
  /** …or after this long in any case. Default 1 s. */
  maxIdleWaitMs?: number;
  /** Bytes the proxy lets through for one render, all requests together. Default 4 × maxBytes. */
  maxTransferBytes?: number;
  /** Renders per context before it is replaced by a fresh one. Default 100. */
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
  /** The guarded proxy refuses every request the SSRF guard does not allow, redirect hops too. */
  by: "proxy";
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
  /** Images, fonts, media (and stylesheets when blocked) failed before any request. */
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

/**
 * Runs in every frame before the page's own scripts. It keeps what the render waits for: fetch
 * and XHR requests still pending (a fetch until its body arrived, as the page's own `.json()`
 * comes after) and when the DOM last changed. It also refuses service workers, which would
 * outlive the row, and pop-ups.
 */
const PAGE_INIT_SCRIPT = `(() => {
  const key = Symbol.for("gleaner.render");
  if (window[key]) return;
  const now = performance.now.bind(performance);
  const state = { pending: 0, last: now(), setTimeout: window.setTimeout.bind(window) };
  Object.defineProperty(window, key, { value: state });
  const touch = () => { state.last = now(); };
  const done = () => { state.pending--; touch(); };
  const fetch = window.fetch;
  if (fetch) {
    window.fetch = function (...args) {
      state.pending++;
      touch();
      let answer;
      try { answer = fetch.apply(this, args); } catch (error) { done(); throw error; }
      answer.then((response) => response.clone().arrayBuffer()).catch(() => {}).then(done);
      return answer;
    };
  }
  const XHR = window.XMLHttpRequest;
  if (XHR) {
    const send = XHR.prototype.send;
    XHR.prototype.send = function (...args) {
      state.pending++;
      touch();
      this.addEventListener("loadend", done, { once: true });
      try { return send.apply(this, args); } catch (error) { this.removeEventListener("loadend", done); done(); throw error; }
    };
  }
  // Under Playwright, window.open still returns a window despite --block-new-web-contents.
  window.open = function () { return null; };
  if (navigator.serviceWorker) {
    navigator.serviceWorker.register = () => Promise.reject(new DOMException("service workers are blocked", "SecurityError"));
  }
  document.addEventListener("DOMContentLoaded", () => {
    new MutationObserver(touch).observe(document, { subtree: true, childList: true, attributes: true, characterData: true });
  }, { once: true });
})();`;

/** What one Runtime.evaluate brings back once the page settled. */
interface PageSnapshot {
  url: string;
  status: number;
  title: string;
  html: string;
  chars: number;
}

/**
 * Waits, inside the page, for the load event, no pending fetch/XHR and a quiet DOM (or maxWaitMs),
 * then reads the document: one round trip for the whole render once the document is there.
 */
function settleAndReadExpression(quietMs: number, maxWaitMs: number, maxChars: number): string {
  return `(async () => {
  const state = window[Symbol.for("gleaner.render")];
  const wait = state ? state.setTimeout : setTimeout;
  const started = performance.now();
  await new Promise((resolve) => {
    const check = () => {
      const now = performance.now();
      if (now - started >= ${maxWaitMs}) return resolve();
      if (document.readyState === "complete" && (!state || (state.pending <= 0 && now - state.last >= ${quietMs}))) return resolve();
      wait(check, 10);
    };
    check();
  });
  const doctype = document.doctype ? new XMLSerializer().serializeToString(document.doctype) : "";
  const html = doctype + (document.documentElement ? document.documentElement.outerHTML : "");
  const navigation = performance.getEntriesByType("navigation")[0];
  try { sessionStorage.clear(); } catch {}
  return {
    url: location.href,
    status: (navigation && navigation.responseStatus) || 0,
    title: document.title,
    html: html.length > ${maxChars} ? html.slice(0, ${maxChars}) : html,
    chars: html.length,
  };
})()`;
}

interface RenderState {
  blocked: number;
  refused: RefusedRequest[];
  /** Origins of every request made, whose storage is cleared afterwards. */
  origins: Set<string>;
  /** Origins of the documents the main frame committed during the render. */
  documentOrigins: Set<string>;
  transferred: number;
  transferBudget: number;
  cutOff: boolean;
}

/** One browser context with its one page. */
interface SlotPage {
  browser: Browser;
  context: BrowserContext;
  page: Page;
  /** The page's own DevTools session, for what Playwright has no call for (storage). */
  cdp: CDPSession;
  uses: number;
  userAgent: string;
  /** Set when the renderer crashed or the page closed. */
  broken: Error | undefined;
  onBroken: ((error: Error) => void) | undefined;
}

interface Slot {
  proxy: GuardedProxy;
  page: SlotPage | undefined;
  /** A page being made: a render that gave up waiting for it leaves it to the next one. */
  preparing: Promise<SlotPage> | undefined;
  state: RenderState | undefined;
}

const CLOSE_TIMEOUT_MS = 5_000;

export function createBrowserPool(options: BrowserPoolOptions = {}): BrowserPool {
  const size = Math.max(1, options.size ?? 4);
  const executablePath = options.executablePath ?? defaultChromiumPath();
  const launchOptions = chromiumLaunchOptions(executablePath, options.args);
  const endpoint = options.endpoint;
  // A remote browser reaches the proxies over a network others may reach them on too: each pool
  // then makes up credentials that only its own contexts are given.
  const proxyCredentials = endpoint
    ? { username: "gleaner", password: randomBytes(18).toString("base64url") }
    : undefined;
  const defaultUserAgent = options.userAgent ?? DEFAULT_USER_AGENT;
  const defaults = {
    timeoutMs: options.timeoutMs ?? 15_000,
    maxBytes: options.maxBytes ?? 5 * 1024 * 1024,
  };
  const idleMs = options.idleMs ?? 50;
  const pageReuse = Math.max(1, options.pageReuse ?? 100);
  const maxIdleWaitMs = options.maxIdleWaitMs ?? 1_000;
  const blockKinds: ReadonlySet<ResourceKind> = new Set([
    ...BLOCKED_KINDS,
    ...(options.blockStylesheets === true ? (["stylesheet"] as const) : []),
  ]);
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
          page: undefined,
          preparing: undefined,
          state: undefined,
        };
        slot.proxy = await startGuardedProxy(
          guard,
          {
            onRequest: (origin) => slot.state?.origins.add(origin),
            blockKinds,
            onBlocked: () => {
              if (slot.state) slot.state.blocked++;
            },
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
          },
          {
            ...(options.proxyHost ? { host: options.proxyHost } : {}),
            ...(proxyCredentials ? { credentials: proxyCredentials } : {}),
          },
        );
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
      const launched = endpoint ? await connectBrowser(endpoint) : await launchBrowser();
      counters.launches++;
      launched.on("disconnected", () => {
        if (browser === launched) browser = undefined;
      });
      if (closed) {
        await launched.close().catch(ignore);
        throw new Error("the browser pool is closed");
      }
      browser = launched;
      return launched;
    })().finally(() => {
      launching = undefined;
    });
    return launching;
  }

  /** A browser server elsewhere; connected again, like a relaunch, after it drops. */
  async function connectBrowser(wsEndpoint: string): Promise<Browser> {
    const { chromium } = await import("playwright-core");
    try {
      return await chromium.connect(wsEndpoint, { timeout: defaults.timeoutMs });
    } catch (error) {
      throw new CrawlError(
        "connection",
        `could not connect to the browser server at ${maskUrl(wsEndpoint)} (crawl.browser.endpoint): ${error instanceof Error ? error.message.split("\n")[0] : String(error)}`,
        { url: maskUrl(wsEndpoint), cause: error },
      );
    }
  }

  async function launchBrowser(): Promise<Browser> {
    if (!existsSync(executablePath)) {
      throw new CrawlError(
        "connection",
        `no Chromium at ${executablePath} (apt-get install chromium)`,
        { url: executablePath },
      );
    }
    let launched: Browser;
    try {
      // Loaded with the first page to render: commands that never render (status, --help,
      // a pipeline of LLM stages) do not pay Playwright's start-up.
      const { chromium } = await import("playwright-core");
      launched = await chromium.launch(launchOptions);
    } catch (error) {
      throw new CrawlError(
        "connection",
        `Chromium at ${executablePath} did not start: ${error instanceof Error ? error.message.split("\n")[0] : String(error)}`,
        { url: executablePath, cause: error },
      );
    }
    return launched;
  }

  function ensurePage(slot: Slot): Promise<SlotPage> {
    slot.preparing ??= preparePage(slot).finally(() => {
      slot.preparing = undefined;
    });
    return slot.preparing;
  }

  async function preparePage(slot: Slot): Promise<SlotPage> {
    const running = await ensureBrowser();
    const current = slot.page;
    if (current && current.browser === running && !current.broken && current.uses < pageReuse) {
      return current;
    }
    if (current) await disposePage(slot, current);
    const context = await running.newContext({
      // Loopback goes through the proxy too (Playwright adds `<-loopback>` to the bypass list).
      proxy: { server: slot.proxy.server, ...proxyCredentials },
      userAgent: defaultUserAgent,
      serviceWorkers: "block",
      acceptDownloads: false,
      // The window's own size (--window-size): no emulation to keep up per page.
      viewport: null,
    });
    counters.contextsCreated++;
    try {
      await context.addInitScript({ content: PAGE_INIT_SCRIPT });
      const page = await context.newPage();
      // Anything else that opens (a link with target=_blank) is closed at once.
      context.on("page", (other) => {
        if (other !== page) void other.close().catch(ignore);
      });
      const cdp = await context.newCDPSession(page);
      const slotPage: SlotPage = {
        browser: running,
        context,
        page,
        cdp,
        uses: 0,
        userAgent: defaultUserAgent,
        broken: undefined,
        onBroken: undefined,
      };
      const broken = (why: string) => () => {
        slotPage.broken ??= new Error(`the page's renderer is gone (${why})`);
        slotPage.onBroken?.(slotPage.broken);
      };
      page.on("crash", broken("crash"));
      page.on("close", broken("close"));
      const mainFrame = page.mainFrame();
      page.on("framenavigated", (frame) => {
        if (frame !== mainFrame || slot.page !== slotPage) return;
        const origin = originOf(frame.url());
        if (origin) slot.state?.documentOrigins.add(origin);
      });
      slot.page = slotPage;
      return slotPage;
    } catch (error) {
      await context.close().catch(ignore);
      throw error;
    }
  }

  /** Destroys a page's context, and its renderer with it. */
  async function disposePage(slot: Slot, page: SlotPage): Promise<void> {
    if (slot.page === page) slot.page = undefined;
    page.broken ??= new Error("the page was disposed");
    if (!page.browser.isConnected()) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      page.context.close().catch(ignore),
      new Promise((resolve) => {
        timer = setTimeout(resolve, CLOSE_TIMEOUT_MS);
      }),
    ]);
    clearTimeout(timer);
  }

  /** Leaves nothing of this render for the next row: storage of every origin, cookies. */
  async function cleanSlot(slot: Slot, state: RenderState, healthy: boolean): Promise<void> {
    const page = slot.page;
    if (!page) return;
    if (!healthy || page.broken) return disposePage(slot, page);
    // sessionStorage lives in the tab, not in the context's storage: the read of the page cleared
    // the document's. A row whose main frame went through several origins gets a fresh context.
    if (state.documentOrigins.size > 1) return disposePage(slot, page);
    try {
      await Promise.all([
        // Local storage, IndexedDB, cache storage, cookies… of every origin the page touched.
        ...[...state.origins].map((origin) =>
          page.cdp.send("Storage.clearDataForOrigin", { origin, storageTypes: "all" }),
        ),
        page.context.clearCookies(),
      ]);
    } catch {
      // A context that cannot be cleaned is not reused.
      await disposePage(slot, page);
    }
  }

  async function render(url: string, renderOptions: RenderOptions = {}): Promise<RenderedPage> {
    const timeoutMs = renderOptions.timeoutMs ?? defaults.timeoutMs;
    const maxBytes = renderOptions.maxBytes ?? defaults.maxBytes;
    const { signal } = renderOptions;
    const parsed = parseHttpUrl(url);
    // Refused before a browser is even involved: the proxy would refuse it anyway.
    await guard.assertUrlAllowed(parsed);
    signal?.throwIfAborted();
    // Starting the browser (loading Playwright, launching Chromium) is not the page's time: on
    // a loaded machine it can take seconds, and must not eat the first render's deadline.
    await ensureBrowser();
    signal?.throwIfAborted();

    const slot = await acquire(signal);
    const renderStarted = performance.now();
    const state: RenderState = {
      blocked: 0,
      refused: [],
      origins: new Set(),
      documentOrigins: new Set(),
      transferred: 0,
      transferBudget: options.maxTransferBytes ?? 4 * maxBytes,
      cutOff: false,
    };
    // One deadline for the whole render; a crash or an abort ends it as early.
    let interrupt: (error: Error) => void = ignore;
    const interrupted = new Promise<never>((_, reject) => {
      interrupt = reject;
    });
    interrupted.catch(ignore);
    const within = <T>(step: Promise<T>): Promise<T> => {
      step.catch(ignore);
      return Promise.race([step, interrupted]);
    };
    const timer = setTimeout(
      () => interrupt(new CrawlError("timeout", `rendering ${url} timed out`, { url })),
      timeoutMs,
    );
    const onAbort = () => interrupt(abortReason(signal));
    signal?.addEventListener("abort", onAbort, { once: true });
    let healthy = false;
    let page: SlotPage | undefined;
    try {
      page = await within(ensurePage(slot));
      const current = page;
      current.onBroken = (error) =>
        interrupt(
          new CrawlError("connection", `the browser went away while rendering ${url}`, {
            url,
            cause: error,
          }),
        );
      if (current.broken) current.onBroken(current.broken);
      current.uses++;
      slot.state = state;

      const userAgent = renderOptions.userAgent ?? defaultUserAgent;
      if (userAgent !== current.userAgent) {
        await within(
          current.cdp.send("Emulation.setUserAgentOverride", { userAgent }).then(ignore),
        );
        current.userAgent = userAgent;
      }

      let response: Response | null = null;
      try {
        // The document committed is enough: the settle wait below runs inside the page.
        response = await within(
          current.page.goto(parsed.href, { waitUntil: "commit", timeout: 0 }),
        );
      } catch (error) {
        if (error instanceof CrawlError || signal?.aborted) throw error;
        throw navigationFailure(parsed.href, error, state);
      }

      const expression = settleAndReadExpression(idleMs, maxIdleWaitMs, maxBytes);
      const snapshot = await readLastDocument(current.page, expression, within);
      const finalUrl = snapshot.url;
      const refusedHop = state.refused.find((r) => r.url === withoutHash(finalUrl));
      if (refusedHop) {
        throw new SsrfRefusedError(
          refusedHop.url,
          refusedHop.address ?? new URL(refusedHop.url).hostname,
          refusedHop.reason,
        );
      }
      if (finalUrl.startsWith("chrome-error:")) {
        throw navigationFailure(parsed.href, "net::ERR_FAILED", state);
      }
      const capped = capUtf8(snapshot.html, maxBytes);
      counters.renders++;
      healthy = true;
      return {
        url,
        finalUrl,
        status: snapshot.status || (response?.status() ?? 0),
        html: capped.text,
        title: snapshot.title,
        truncated: capped.truncated || snapshot.chars > snapshot.html.length || state.cutOff,
        durationMs: performance.now() - renderStarted,
        blockedRequests: state.blocked,
        refusedRequests: state.refused,
      };
    } catch (error) {
      if (signal?.aborted) throw abortReason(signal);
      // The page answered (a refused hop, a failed navigation, a download): it can serve the
      // next row once cleaned. After a timeout, a crash or anything unknown it is destroyed.
      healthy = error instanceof CrawlError && error.errorClass !== "timeout" && !page?.broken;
      if (error instanceof CrawlError) throw error;
      if (page?.broken || !page?.browser.isConnected()) {
        throw new CrawlError("connection", `the browser went away while rendering ${url}`, {
          url,
          cause: error,
        });
      }
      throw error;
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      if (page) page.onBroken = undefined;
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

/** How long a render waits for a redirect a settled page started to commit. */
const NAVIGATION_WAIT_MS = 5_000;

/**
 * Settles and reads the page, and reads the next document instead when the page sent itself
 * elsewhere meanwhile (a script or meta redirect), a few times at most. A redirecting document
 * may settle before the navigation it started commits (the next page is slow to answer): its
 * main-frame navigation requests are watched from the first commit on, and one still in flight
 * after the read is waited for, up to NAVIGATION_WAIT_MS (and the render's deadline), before the
 * next read. Called right after the
 * first commit, before the page's own navigation requests can be reported.
 */
async function readLastDocument(
  page: Page,
  expression: string,
  within: <T>(step: Promise<T>) => Promise<T>,
): Promise<PageSnapshot> {
  const mainFrame = page.mainFrame();
  const inFlight = new Set<Request>();
  const onRequest = (request: Request) => {
    if (request.isNavigationRequest() && request.frame() === mainFrame) inFlight.add(request);
  };
  const onDone = (request: Request) => inFlight.delete(request);
  const onNavigated = (frame: unknown) => {
    if (frame === mainFrame) inFlight.clear();
  };
  page.on("request", onRequest);
  // A navigation that ends without a new document (a download, a 204) is no longer waited for.
  page.on("requestfailed", onDone);
  page.on("requestfinished", onDone);
  page.on("framenavigated", onNavigated);
  try {
    let snapshot = await readSettledPage(page, expression, within);
    for (let hop = 0; hop < 3 && inFlight.size > 0; hop++) {
      // Committed already, or wait for the commit (or give up and keep this document).
      if (withoutHash(page.url()) === withoutHash(snapshot.url)) {
        const committed = await within(
          page
            .waitForEvent("framenavigated", {
              predicate: (frame) => frame === mainFrame,
              timeout: NAVIGATION_WAIT_MS,
            })
            .then(
              () => true,
              () => false,
            ),
        );
        if (!committed) break;
      }
      inFlight.clear();
      snapshot = await readSettledPage(page, expression, within);
    }
    return snapshot;
  } finally {
    page.off("request", onRequest);
    page.off("requestfailed", onDone);
    page.off("requestfinished", onDone);
    page.off("framenavigated", onNavigated);
  }
}

/**
 * Settles and reads the page. A page that navigates itself (a script redirect) destroys the
 * document under the evaluation: then the next document is read, a few times at most.
 */
async function readSettledPage(
  page: Page,
  expression: string,
  within: <T>(step: Promise<T>) => Promise<T>,
): Promise<PageSnapshot> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await within(page.evaluate<PageSnapshot>(expression));
    } catch (error) {
      if (error instanceof CrawlError || attempt >= 3 || page.isClosed()) throw error;
      // The document that replaced it, once its DOM is there.
      await within(page.waitForLoadState("domcontentloaded", { timeout: 0 }));
    }
  }
}

function navigationFailure(url: string, error: unknown, state: RenderState): CrawlError {
  const message = error instanceof Error ? error.message : String(error);
  // A tunnel the proxy refused is known by its origin only: the https hop of this navigation.
  if (message.includes("ERR_TUNNEL_CONNECTION_FAILED")) {
    const refused = state.refused.findLast((r) => r.url.startsWith("https://"));
    if (refused) {
      return new SsrfRefusedError(
        refused.url,
        refused.address ?? new URL(refused.url).hostname,
        refused.reason,
      );
    }
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

function originOf(url: string): string | undefined {
  try {
    const { origin } = new URL(url);
    return origin === "null" ? undefined : origin;
  } catch {
    return undefined;
  }
}

function withoutHash(url: string): string {
  const at = url.indexOf("#");
  return at === -1 ? url : url.slice(0, at);
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
