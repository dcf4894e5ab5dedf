import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/**
 * A small web site on 127.0.0.1 for the crawler's tests: every kind of page the fetch path has to
 * handle, and a log of the requests it received so tests can prove what was (not) fetched.
 */

export interface FixtureRequest {
  path: string;
  headers: IncomingMessage["headers"];
}

export interface FixtureSite {
  /** `http://127.0.0.1:<port>` */
  origin: string;
  port: number;
  url(path: string): string;
  requests: FixtureRequest[];
  /** How many requests asked for this path (query string included when given). */
  hits(path: string): number;
  /** Bytes of /huge written before the client went away, and whether it did. */
  huge: { sent: number; aborted: boolean };
  setRobots(text: string | null, status?: number): void;
  close(): Promise<void>;
}

export const HUGE_BYTES = 20 * 1024 * 1024;
export const METADATA_URL = "http://169.254.169.254/latest/meta-data";

export const ABOUT_JSON_LD = {
  "@context": "https://schema.org",
  "@type": "Organization",
  name: "Fixture Works",
  foundingDate: "1998",
  numberOfEmployees: 42,
};

export function htmlPage(title: string, body: string, head = ""): string {
  return `<!doctype html><html><head><meta charset="utf-8"><title>${title}</title>${head}</head><body>${body}</body></html>`;
}

const CACHED_ETAG = '"cached-v1"';
const CACHED_LAST_MODIFIED = "Wed, 01 Jan 2025 00:00:00 GMT";

export async function startFixtureSite(): Promise<FixtureSite> {
  const requests: FixtureRequest[] = [];
  const timers = new Set<NodeJS.Timeout>();
  const serveResearch = createResearchRoutes(timers);
  const huge = { sent: 0, aborted: false };
  let robots: { text: string | null; status: number } = {
    text: "User-agent: *\nDisallow: /private/\n",
    status: 200,
  };

  function send(res: ServerResponse, status: number, type: string, body: string | Buffer) {
    res.writeHead(status, { "content-type": type, "content-length": Buffer.byteLength(body) });
    res.end(body);
  }

  function handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? "/", "http://fixture");
    requests.push({ path: url.pathname + url.search, headers: req.headers });
    const path = url.pathname;
    if (serveBrowserRoute(path, res)) return;
    if (serveResearch(req, res, path)) return;

    if (path === "/robots.txt") {
      if (robots.text === null) return send(res, robots.status, "text/plain", "no");
      return send(res, robots.status, "text/plain", robots.text);
    }
    const numbered = /^\/page\/(\d+)$/.exec(path);
    if (numbered) {
      return send(
        res,
        200,
        "text/html; charset=utf-8",
        htmlPage(`Page ${numbered[1]}`, `<p>Page ${numbered[1]}</p>`),
      );
    }
    switch (path) {
      case "/about.html":
        return send(
          res,
          200,
          "text/html; charset=utf-8",
          htmlPage(
            "About Fixture Works",
            "<h1>Fixture Works</h1><p>Founded in 1998, 42 people.</p>",
            `<script type="application/ld+json">${JSON.stringify(ABOUT_JSON_LD)}</script>`,
          ),
        );
      case "/private/secret.html":
        return send(res, 200, "text/html", htmlPage("Secret", "<p>robots say no</p>"));
      case "/redirect/1":
        res.writeHead(302, { location: "/redirect/2" });
        return void res.end();
      case "/redirect/2":
        // Relative to the current URL: /redirect/3.
        res.writeHead(301, { location: "3" });
        return void res.end();
      case "/redirect/3":
        res.writeHead(307, { location: "../about.html" });
        return void res.end();
      case "/loop":
        res.writeHead(302, { location: "/loop" });
        return void res.end();
      case "/to-metadata":
        res.writeHead(302, { location: METADATA_URL });
        return void res.end();
      case "/slow": {
        const timer = setTimeout(() => {
          timers.delete(timer);
          send(res, 200, "text/html", htmlPage("Slow", "<p>finally</p>"));
        }, 5_000);
        timers.add(timer);
        return;
      }
      case "/huge":
        return streamHuge(res);
      case "/huge-declared":
        // Declares its size: the crawler can refuse it before reading a byte.
        res.writeHead(200, { "content-type": "text/html", "content-length": HUGE_BYTES });
        return void res.end();
      case "/latin.html":
        // windows-1252: é is 0xE9 and € is 0x80, neither valid UTF-8 on its own.
        return send(
          res,
          200,
          "text/html",
          Buffer.concat([
            Buffer.from('<html><head><meta charset="windows-1252"><title>Caf'),
            Buffer.from([0xe9]),
            Buffer.from("</title></head><body><p>Prix : 5 "),
            Buffer.from([0x80]),
            Buffer.from("</p></body></html>"),
          ]),
        );
      case "/cached.html": {
        const validators = { etag: CACHED_ETAG, "last-modified": CACHED_LAST_MODIFIED };
        if (
          req.headers["if-none-match"] === CACHED_ETAG ||
          req.headers["if-modified-since"] === CACHED_LAST_MODIFIED
        ) {
          res.writeHead(304, validators);
          return void res.end();
        }
        res.writeHead(200, { ...validators, "content-type": "text/html; charset=utf-8" });
        return void res.end(htmlPage("Cached", "<p>same as before</p>"));
      }
      case "/rate-limited":
        res.writeHead(429, { "retry-after": "7", "content-type": "text/plain" });
        return void res.end("slow down");
      case "/error":
        return send(res, 500, "text/plain", "boom");
      case "/text.txt":
        return send(res, 200, "text/plain; charset=utf-8", "plain words\n");
      case "/image.png":
        return send(
          res,
          200,
          "image/png",
          Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
        );
      default:
        return send(res, 404, "text/html", htmlPage("Not found", "<p>no such page</p>"));
    }
  }

  function streamHuge(res: ServerResponse): void {
    huge.sent = 0;
    huge.aborted = false;
    res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
    const chunk = Buffer.alloc(64 * 1024, "a");
    res.on("close", () => {
      if (huge.sent < HUGE_BYTES) huge.aborted = true;
    });
    const pump = () => {
      while (huge.sent < HUGE_BYTES && !res.destroyed) {
        huge.sent += chunk.length;
        if (!res.write(chunk)) return void res.once("drain", pump);
      }
      if (!res.destroyed) res.end();
    };
    pump();
  }

  const server = createServer(handle);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  const origin = `http://127.0.0.1:${port}`;
  return {
    origin,
    port,
    url: (path) => origin + path,
    requests,
    hits: (path) => requests.filter((r) => r.path === path).length,
    huge,
    setRobots: (text, status = 200) => {
      robots = { text, status };
    },
    close: async () => {
      for (const timer of timers) clearTimeout(timer);
      server.closeAllConnections();
      await new Promise<void>((resolve, reject) =>
        server.close((error) => (error ? reject(error) : resolve())),
      );
    },
  };
}

// --- Pages for the browser path (src/crawl/browser-pool.ts), all under /browser/. ---

/** Where the fixture's pages send the cloud metadata request (never connected to). */
export const BROWSER_METADATA_URL = "http://169.254.169.254/latest/meta-data/";

/** The words /browser/js/<n> shows once its script ran; they are in no HTML the server sends. */
export function jsItemText(n: string | number): string {
  return `Rendered item ${n}: this paragraph was fetched as JSON and inserted by a script, so a plain HTTP fetch of the page never sees it. It is long enough to count as real content for the crawler's thin-text rule, which wants some two hundred visible characters.`;
}

/** The shell of /browser/js/<n>: an empty root and a script bundle, like any SPA. */
export function jsShellHtml(n: string | number): string {
  return htmlPage(`Shell ${n}`, `<div id="root"></div><script src="/browser/app.js"></script>`);
}

const BROWSER_APP_JS = `(async () => {
  const n = location.pathname.split("/").pop();
  const item = await (await fetch("/browser/data/" + n + ".json")).json();
  document.title = item.title;
  const root = document.getElementById("root");
  root.innerHTML = "<h1></h1><p></p>";
  root.querySelector("h1").textContent = item.title;
  root.querySelector("p").textContent = item.text;
})();`;

function serveBrowserRoute(path: string, res: ServerResponse): boolean {
  const send = (status: number, type: string, body: string | Buffer, headers = {}) => {
    res.writeHead(status, {
      "content-type": type,
      "content-length": Buffer.byteLength(body),
      ...headers,
    });
    res.end(body);
    return true;
  };
  const html = "text/html; charset=utf-8";
  const js = /^\/browser\/js\/(\d+)$/.exec(path);
  if (js) return send(200, html, jsShellHtml(js[1] as string));
  // The same page, answered after 1.5 s: longer than a render waits for a page to settle
  // (max_idle_wait, 1 s by default).
  const slowJs = /^\/browser\/slow\/js\/(\d+)$/.exec(path);
  if (slowJs) {
    setTimeout(() => send(200, html, jsShellHtml(slowJs[1] as string)), 1_500);
    return true;
  }
  const data = /^\/browser\/data\/(\d+)\.json$/.exec(path);
  if (data) {
    const n = data[1] as string;
    return send(
      200,
      "application/json",
      JSON.stringify({ title: `Item ${n}`, text: jsItemText(n) }),
    );
  }
  switch (path) {
    case "/browser/app.js":
      return send(200, "text/javascript", BROWSER_APP_JS, { "cache-control": "max-age=3600" });
    case "/browser/assets":
      // An image, a font (forced to load by the script), a video and a stylesheet.
      return send(
        200,
        html,
        htmlPage(
          "Assets",
          `<p class="f">Text in a web font.</p><img src="/image.png" alt="logo"><video src="/browser/clip.mp4" autoplay muted></video>
<script>document.fonts.load('16px "Fixture Font"').catch(() => {});</script>`,
          `<link rel="stylesheet" href="/browser/style.css"><style>@font-face { font-family: "Fixture Font"; src: url(/browser/font.woff2) format("woff2"); } .f { font-family: "Fixture Font"; }</style>`,
        ),
      );
    case "/browser/style.css":
      return send(200, "text/css", "body { margin: 0; }");
    case "/browser/font.woff2":
      return send(200, "font/woff2", Buffer.from("wOF2 not really"));
    case "/browser/clip.mp4":
      return send(200, "video/mp4", Buffer.alloc(64));
    case "/browser/fetch-metadata":
      // The page's own script asks for the cloud metadata; the result shows what it got.
      return send(
        200,
        html,
        htmlPage(
          "Metadata",
          `<p id="result">pending</p><script>
fetch(${JSON.stringify(BROWSER_METADATA_URL)}).then(
  (r) => { document.getElementById("result").textContent = "reached " + r.status; },
  () => { document.getElementById("result").textContent = "blocked"; },
);</script>`,
        ),
      );
    case "/browser/fetch-redirect-metadata":
      // Same origin at first, then a 302 to the metadata: a hop the page's route never sees.
      return send(
        200,
        html,
        htmlPage(
          "Metadata by redirect",
          `<p id="result">pending</p><script>
fetch("/browser/redirect-forbidden").then(
  (r) => { document.getElementById("result").textContent = "answer " + r.status; },
  () => { document.getElementById("result").textContent = "blocked"; },
);</script>`,
        ),
      );
    case "/browser/redirect-forbidden":
      res.writeHead(302, { location: BROWSER_METADATA_URL, "content-length": 0 });
      res.end();
      return true;
    case "/browser/redirect-loopback-2":
      // 127.0.0.2 is loopback too, so even a broken guard keeps the traffic on this machine.
      res.writeHead(302, { location: "http://127.0.0.2:8080/forbidden", "content-length": 0 });
      res.end();
      return true;
    case "/browser/alert":
      // alert() holds the page's main thread until someone answers it.
      return send(
        200,
        html,
        htmlPage(
          "Alert",
          `<p id="after"></p><script>alert("hello"); document.getElementById("after").textContent = "after the alert";</script>`,
        ),
      );
    case "/browser/hang":
      // A script that never yields: only the render's deadline ends it.
      return send(200, html, htmlPage("Hang", `<p>hanging</p><script>for (;;) {}</script>`));
    case "/browser/download":
      return send(200, "application/zip", Buffer.from("PK\x03\x04 not really a zip"), {
        "content-disposition": 'attachment; filename="data.zip"',
      });
    case "/browser/script-redirect-slow":
      // The same, to a page slower to answer than this one is to settle.
      return send(
        200,
        html,
        htmlPage("Redirecting", `<script>location.replace("/browser/slow/js/12");</script>`),
      );
    case "/browser/script-redirect":
      // The document replaces itself at once, as a client-side redirect does.
      return send(
        200,
        html,
        htmlPage("Redirecting", `<script>location.replace("/browser/js/11");</script>`),
      );
    case "/browser/popup":
      return send(
        200,
        html,
        htmlPage(
          "Popup",
          `<p id="popup"></p><script>document.getElementById("popup").textContent = "popup " + (window.open("/browser/popup-target") ? "opened" : "blocked");</script>`,
        ),
      );
    case "/browser/popup-target":
      return send(200, html, htmlPage("Popup target", "<p>a new window</p>"));
    case "/browser/fetch-image":
      // A script's own fetch of an image: no <img>, but still an image.
      return send(
        200,
        html,
        htmlPage(
          "Fetch image",
          `<p id="result">pending</p><script>
fetch("/image.png").then(
  (r) => { document.getElementById("result").textContent = "answer " + r.status; },
  () => { document.getElementById("result").textContent = "failed"; },
);</script>`,
        ),
      );
    case "/browser/session-storage":
      // Shows what an earlier page of the same origin left in this tab's session storage.
      return send(
        200,
        html,
        htmlPage(
          "Session storage",
          `<p id="seen"></p><script>
document.getElementById("seen").textContent = "session=" + sessionStorage.getItem("mark");
sessionStorage.setItem("mark", "left");
</script>`,
        ),
      );
    case "/browser/storage":
      // Shows what an earlier page of the same origin left behind, then leaves its own traces.
      return send(
        200,
        html,
        htmlPage(
          "Storage",
          `<p id="seen"></p><script>
document.getElementById("seen").textContent =
  "local=" + localStorage.getItem("mark") + " cookie=" + (document.cookie || "none");
localStorage.setItem("mark", "left");
document.cookie = "mark=left; path=/";
</script>`,
        ),
      );
    default:
      return false;
  }
}

// --- Pages for the crawl stage (src/stages/crawl-stage.ts), all under /research/. ---

/** The paths robots.txt should disallow for the crawl stage's failure page (see setRobots). */
export const RESEARCH_BLOCKED_PREFIX = "/research/blocked/";

/** How long a /research/s/<ns>/slow/<n> page waits for a second one to arrive at once. */
export const RESEARCH_PAIR_WAIT_MS = 1500;

/**
 * /research/s/<ns>/<page>: one small company site per namespace <ns>, so each test crawls URLs
 * of its own (the page cache is shared by the whole file).
 *
 * - `start`: links to about, team, careers, news, deep/1, leaders, board, company-profile, p/7
 *   (each with its link text below), to `about#contact`, and to two other hosts: the same
 *   server as `localhost`, and elsewhere.invalid.
 * - `about` links to `about/history`; `deep/<n>` links to `deep/<n+1>`.
 * - `t`: a tree for the crawl orders: t → t/a, t/b, t/c; each of those → t/<x>/1, t/<x>/2.
 * - `fails`: links to about, missing (404), /research/blocked/about (for robots.txt) and
 *   to-metadata (a redirect to the cloud metadata address).
 * - `error`: always 500.
 * - `hub` links to slow/1…4; a `slow/<n>` page answers as soon as a second one of its namespace
 *   is waiting too (titled "together"), or after RESEARCH_PAIR_WAIT_MS alone ("alone"): its
 *   title tells whether the crawler fetched two at once.
 */
export const RESEARCH_START_LINKS: ReadonlyArray<readonly [string, string]> = [
  ["about", "About us"],
  ["team", "Our team"],
  ["careers", "Careers"],
  ["news", "Latest news"],
  ["deep/1", "Read the story"],
  ["leaders", "Leadership"],
  ["board", "Executive board"],
  ["company-profile", "Read more"],
  ["p/7", "Who we are"],
];

function createResearchRoutes(
  timers: Set<NodeJS.Timeout>,
): (req: IncomingMessage, res: ServerResponse, path: string) => boolean {
  /** Per namespace: the release of a slow page waiting for a partner. */
  const waiting = new Map<string, () => void>();
  const html = (res: ServerResponse, status: number, title: string, body: string) => {
    const text = htmlPage(title, body);
    res.writeHead(status, {
      "content-type": "text/html; charset=utf-8",
      "content-length": Buffer.byteLength(text),
    });
    res.end(text);
    return true;
  };
  const a = (href: string, text: string) => `<li><a href="${href}">${text}</a></li>`;

  return (req, res, path) => {
    if (path.startsWith(RESEARCH_BLOCKED_PREFIX))
      return html(res, 200, "Blocked", "<p>robots.txt should have kept the crawler out</p>");
    const match = /^\/research\/s\/([a-z0-9_-]+)\/(.*)$/.exec(path);
    if (!match) return false;
    const ns = match[1] as string;
    const page = match[2] as string;
    const at = (p: string) => `/research/s/${ns}/${p}`;
    const port = req.socket.localPort ?? 0;
    switch (page) {
      case "start":
        return html(
          res,
          200,
          "Acme Rockets",
          `<h1>Acme Rockets</h1><p>Acme Rockets builds small launch vehicles.</p><ul>${[
            ...RESEARCH_START_LINKS.map(([p, text]) => a(at(p), text)),
            a(`${at("about")}#contact`, "Contact us"),
            a(`http://localhost:${port}${at("about")}`, "About our parent company"),
            a("http://elsewhere.invalid/about", "About our partner"),
          ].join("")}</ul>`,
        );
      case "about":
        return html(
          res,
          200,
          "About Acme Rockets",
          `<p>Acme Rockets was founded in 1950.</p><ul>${a(at("about/history"), "Our history")}</ul>`,
        );
      case "fails":
        return html(
          res,
          200,
          "Acme Rockets",
          `<p>Acme Rockets.</p><ul>${[
            a(at("about"), "About us"),
            a(at("missing"), "About the missing page"),
            a(`${RESEARCH_BLOCKED_PREFIX}about`, "About blocked"),
            a(at("to-metadata"), "About metadata"),
          ].join("")}</ul>`,
        );
      case "to-metadata":
        res.writeHead(302, { location: METADATA_URL, "content-length": 0 });
        res.end();
        return true;
      case "error":
        return html(res, 500, "Error", "<p>the server is down</p>");
      case "t":
        return html(
          res,
          200,
          "Tree",
          `<ul>${["a", "b", "c"].map((x) => a(at(`t/${x}`), `Branch ${x}`)).join("")}</ul>`,
        );
      case "hub":
        return html(
          res,
          200,
          "Hub",
          `<ul>${[1, 2, 3, 4].map((n) => a(at(`slow/${n}`), `Slow ${n}`)).join("")}</ul>`,
        );
    }
    const branch = /^t\/([abc])$/.exec(page);
    if (branch)
      return html(
        res,
        200,
        `Branch ${branch[1]}`,
        `<ul>${[1, 2].map((n) => a(at(`t/${branch[1]}/${n}`), `Leaf ${n}`)).join("")}</ul>`,
      );
    const deep = /^deep\/(\d+)$/.exec(page);
    if (deep)
      return html(
        res,
        200,
        `Chapter ${deep[1]}`,
        `<p>Chapter ${deep[1]}.</p><ul>${a(at(`deep/${Number(deep[1]) + 1}`), "Next chapter")}</ul>`,
      );
    if (/^slow\/\d+$/.test(page)) {
      const partner = waiting.get(ns);
      if (partner) {
        waiting.delete(ns);
        partner();
        return html(res, 200, "together", `<p>${page} was fetched while another waited.</p>`);
      }
      const timer = setTimeout(() => {
        timers.delete(timer);
        if (waiting.get(ns) === release) waiting.delete(ns);
        html(res, 200, "alone", `<p>${page} waited alone.</p>`);
      }, RESEARCH_PAIR_WAIT_MS);
      timers.add(timer);
      const release = () => {
        clearTimeout(timer);
        timers.delete(timer);
        html(res, 200, "together", `<p>${page} was fetched while another waited.</p>`);
      };
      waiting.set(ns, release);
      return true;
    }
    if (
      /^(team|careers|news|leaders|board|company-profile|p\/7|about\/history|t\/[abc]\/[12])$/.test(
        page,
      )
    )
      return html(res, 200, `Acme Rockets: ${page}`, `<p>The ${page} page of Acme Rockets.</p>`);
    return html(res, 404, "Not found", "<p>no such page</p>");
  };
}
