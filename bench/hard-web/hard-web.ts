/**
 * A generated fixture web built to break what the demo web lets Gleaner assume, served on
 * loopback: one HTTP server per site, each on its own address 127.61.0.n, plus a company
 * register (127.61.0.250), a press site (127.61.0.251) and a Serper-shaped search API
 * (127.61.0.252). Every organisation has one fact, its employee count, stated as
 * "<exact name> — <label>: <n>" on the page(s) its kind puts it on; a labelled fact with another
 * value and the exact name exists only where a careful crawler must not read it (robots.txt
 * disallowed pages), so any such value written is a decoy.
 */
import { createServer, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/** Where an organisation's fact is, which decides what Gleaner must do to reach it. */
export const PAGE_KINDS = [
  /** On the home page, plain HTML: the baseline. */
  "home",
  /** On a sub-page linked in another language ("Über uns", "Chi siamo"…). */
  "foreign_link",
  /** Two links deep, behind link texts with no follow word: "Our story" → "Numbers". */
  "two_deep",
  /** Only on a company register's entry for it; its own site states nothing. */
  "register",
  /** Filled in by a script after load, into a page that already has static text. */
  "script",
  /** Its name is near-identical to another row's, on another site. */
  "namesake",
  /** Its site disallows /private/ in robots.txt, where a page states a wrong value. */
  "robots_decoy",
  /** Its home page redirects (301) to /en/home, which states the fact. */
  "redirect",
  /** Its site answers after a delay. */
  "slow",
] as const;
export type PageKind = (typeof PAGE_KINDS)[number];

export interface HardOrganisation {
  name: string;
  kind: PageKind;
  /** The site's address: http://127.61.0.n:PORT once served. */
  host: string;
  employees: number;
  /** The wrong value a robots decoy page states, when there is one. */
  decoy?: number;
}

interface Page {
  title: string;
  body: string;
  delayMs?: number;
  redirect?: string;
}

const FIRST = [
  "Acme",
  "Borealis",
  "Cobalt",
  "Dunmore",
  "Elstree",
  "Fenwick",
  "Galloway",
  "Harrow",
  "Ingleby",
  "Juniper",
];
const SECOND = [
  "Rocketry",
  "Textiles",
  "Analytics",
  "Logistics",
  "Foods",
  "Optics",
  "Marine",
  "Ceramics",
  "Robotics",
];
const FOREIGN: Array<{ link: string; label: string }> = [
  { link: "Über uns", label: "Mitarbeiter" },
  { link: "Chi siamo", label: "dipendenti" },
  { link: "Quiénes somos", label: "empleados" },
  { link: "À propos", label: "salariés" },
  { link: "Over het bedrijf", label: "medewerkers" },
];
/** The labels the extracting fake LLM reads as the employee count. */
export const EMPLOYEE_LABELS = ["employees", ...FOREIGN.map((f) => f.label)];

const html = (page: Page, links: Array<[string, string]> = [], script = ""): string =>
  `<!doctype html><html lang="en"><head><title>${page.title}</title></head><body>` +
  `<nav>${links.map(([href, text]) => `<a href="${href}">${text}</a>`).join(" ")}</nav>` +
  `<main><h1>${page.title}</h1>${page.body}</main>${script}</body></html>`;

const filler = (name: string) =>
  `<p>${name} has served its customers with care and craft for many years, ` +
  `from its workshop to its clients' doors, and keeps growing with them.</p>`;

const fact = (name: string, label: string, n: number) => `<p>${name} — ${label}: ${n}</p>`;

/** The organisations, `perKind` of every kind, deterministic. */
export function generateOrganisations(perKind: number): HardOrganisation[] {
  const orgs: HardOrganisation[] = [];
  let n = 0;
  for (const kind of PAGE_KINDS) {
    for (let i = 0; i < perKind; i++) {
      const name = `${FIRST[n % FIRST.length]} ${SECOND[Math.floor(n / FIRST.length) % SECOND.length]}`;
      const org: HardOrganisation = {
        name,
        kind,
        host: `127.61.0.${n + 1}`,
        employees: 100 + n * 7,
        ...(kind === "robots_decoy" ? { decoy: 90_000 + n } : {}),
      };
      orgs.push(org);
      n++;
      // A near-namesake on its own site, a row too, stating its own fact on its home page.
      if (kind === "namesake") {
        orgs.push({
          name: `${name} Partners`,
          kind: "home",
          host: `127.61.0.${n + 1}`,
          employees: 50_000 + n,
        });
        n++;
      }
    }
  }
  if (n > 240) throw new Error(`too many organisations for 127.61.0.1-240: ${n}`);
  return orgs;
}

/** The pages of one organisation's site, by path. */
function sitePages(org: HardOrganisation, index: number): Map<string, Page> {
  const { name, employees } = org;
  const pages = new Map<string, Page>();
  const home = (body: string, links: Array<[string, string]> = [], script = ""): string =>
    html(
      { title: name, body: filler(name) + body },
      [...links, ["/careers", "Careers"], ["/news", "Latest news"]],
      script,
    );
  const put = (path: string, body: string, extra: Partial<Page> = {}) =>
    pages.set(path, { title: name, body, ...extra });
  put("/careers", html({ title: `${name} careers`, body: "<p>Join us.</p>" }));
  put("/news", html({ title: `${name} news`, body: "<p>News.</p>" }));
  switch (org.kind) {
    case "home":
    case "namesake":
      put("/", home(fact(name, "employees", employees)));
      break;
    case "foreign_link": {
      const f = FOREIGN[index % FOREIGN.length] as { link: string; label: string };
      put("/", home("", [["/p/1", f.link]]));
      put("/p/1", html({ title: f.link, body: fact(name, f.label, employees) }));
      break;
    }
    case "two_deep":
      put("/", home("", [["/p/1", "Our story"]]));
      put("/p/1", html({ title: "Our story", body: filler(name) }, [["/p/2", "Numbers"]]));
      put("/p/2", html({ title: "Numbers", body: fact(name, "employees", employees) }));
      break;
    case "register":
      put("/", home(""));
      break;
    case "script":
      put(
        "/",
        home(
          `<div id="facts"></div>`,
          [],
          `<script>document.getElementById("facts").textContent = ${JSON.stringify(`${name} — employees: ${employees}`)};</script>`,
        ),
      );
      break;
    case "robots_decoy":
      put("/", home(fact(name, "employees", employees), [["/private/facts", "About us"]]));
      put(
        "/private/facts",
        html({ title: `About ${name}`, body: fact(name, "employees", org.decoy ?? 0) }),
      );
      break;
    case "redirect":
      put("/", "", { redirect: "/en/home" });
      put("/en/home", home(fact(name, "employees", employees)));
      break;
    case "slow":
      put("/", home(fact(name, "employees", employees)), { delayMs: 3000 });
      break;
  }
  return pages;
}

export interface HardWeb {
  orgs: HardOrganisation[];
  /** http://127.61.0.n:PORT of an organisation's site. */
  siteUrl(org: HardOrganisation): string;
  /** Serper-shaped base URL. */
  searchUrl: string;
  /** Every page request, as `http://host:port/path`. */
  requests: string[];
  /** Requests for pages robots.txt disallows: must stay empty. */
  robotsViolations(): string[];
  close(): Promise<void>;
}

const REGISTER_HOST = "127.61.0.250";
const PRESS_HOST = "127.61.0.251";
const SEARCH_HOST = "127.61.0.252";

async function listen(server: Server, host: string): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, host, resolve);
  });
  return (server.address() as AddressInfo).port;
}

function send(res: ServerResponse, page: Page | undefined): void {
  const finish = () => {
    if (!page) {
      res.writeHead(404, { "content-type": "text/html" }).end("<p>not found</p>");
    } else if (page.redirect) {
      res.writeHead(301, { location: page.redirect }).end();
    } else {
      res.writeHead(200, { "content-type": "text/html; charset=utf-8" }).end(page.body);
    }
  };
  if (page?.delayMs) setTimeout(finish, page.delayMs);
  else finish();
}

/** Serves the web of `orgs`: every site, the register, the press site and the search API. */
export async function serveHardWeb(orgs: HardOrganisation[]): Promise<HardWeb> {
  const servers: Server[] = [];
  const requests: string[] = [];
  const ports = new Map<string, number>();
  const urlOf = (host: string) => `http://${host}:${ports.get(host) ?? 0}`;
  const robots = "User-agent: *\nDisallow: /private/\n";
  const serve = async (host: string, pages: Map<string, Page>) => {
    const server = createServer((req, res) => {
      const path = (req.url ?? "/").split("?")[0] ?? "/";
      requests.push(`${urlOf(host)}${path}`);
      if (path === "/robots.txt") {
        res.writeHead(200, { "content-type": "text/plain" }).end(robots);
        return;
      }
      send(res, pages.get(path));
    });
    servers.push(server);
    ports.set(host, await listen(server, host));
  };
  for (const [i, org] of orgs.entries()) await serve(org.host, sitePages(org, i));
  const register = new Map<string, Page>();
  const press = new Map<string, Page>();
  for (const [i, org] of orgs.entries()) {
    if (org.kind === "register")
      register.set(`/entry/${i}`, {
        title: "",
        body: html({
          title: `${org.name} GmbH | Company Register`,
          body: fact(org.name, "employees", org.employees),
        }),
      });
    press.set(`/roundup/${i}`, {
      title: "",
      body: html({
        title: "Company facts roundup",
        body: `<p>${org.name} was among the firms we met.</p>`,
      }),
    });
  }
  await serve(REGISTER_HOST, register);
  await serve(PRESS_HOST, press);

  // Serper: POST /search {q}; results for the organisations whose whole name the query holds.
  const search = createServer((req, res) => {
    let raw = "";
    req.on("data", (c: Buffer) => (raw += c.toString()));
    req.on("end", () => {
      const asked = (JSON.parse(raw || "{}") as { q?: unknown }).q;
      const q = typeof asked === "string" ? asked.toLowerCase() : "";
      const organic: Array<{ title: string; link: string; snippet: string }> = [];
      for (const [i, org] of orgs.entries()) {
        const name = org.name.toLowerCase();
        // A near-namesake ("Acme Rocketry Partners" for "Acme Rocketry") is found too.
        if (q.trim() === "" || !(q.includes(name) || name.includes(q.trim()))) continue;
        organic.push({
          title: "Company facts roundup",
          link: `${urlOf(PRESS_HOST)}/roundup/${i}`,
          snippet: `${org.name} was among the firms we met.`,
        });
        organic.push({
          title: org.name,
          link: `${urlOf(org.host)}/`,
          snippet: `${org.name}, since long ago.`,
        });
        if (org.kind === "robots_decoy")
          organic.push({
            title: `About ${org.name}`,
            link: `${urlOf(org.host)}/private/facts`,
            snippet: `${org.name} facts.`,
          });
        if (org.kind === "register")
          organic.push({
            title: `${org.name} GmbH | Company Register`,
            link: `${urlOf(REGISTER_HOST)}/entry/${i}`,
            snippet: `Entry for ${org.name}.`,
          });
      }
      res
        .writeHead(200, { "content-type": "application/json" })
        .end(JSON.stringify({ organic: organic.map((o, i) => ({ ...o, position: i + 1 })) }));
    });
  });
  servers.push(search);
  ports.set(SEARCH_HOST, await listen(search, SEARCH_HOST));

  return {
    orgs,
    siteUrl: (org) => urlOf(org.host),
    searchUrl: urlOf(SEARCH_HOST),
    requests,
    robotsViolations: () => requests.filter((r) => new URL(r).pathname.startsWith("/private/")),
    async close() {
      for (const server of servers) {
        server.closeAllConnections();
        await new Promise((resolve) => server.close(resolve));
      }
    },
  };
}
