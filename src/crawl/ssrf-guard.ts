import { lookup as dnsLookup } from "node:dns/promises";
import { isIP } from "node:net";
import ipaddr from "ipaddr.js";
import { Agent, buildConnector, type Dispatcher } from "undici";
import {
  classifyAddress,
  parseAllowList,
  stripBrackets,
  type AddressVerdict,
} from "../core/address-ranges.ts";
import { CrawlError, SsrfRefusedError } from "./crawl-error.ts";

/**
 * The SSRF guard: a crawler fed URLs from search results and redirects must not become a way to
 * reach the machine it runs on, its network or the cloud metadata endpoint. Only globally routable
 * unicast addresses pass, unless the deployment names a host or range in `crawl.allow`.
 *
 * The check runs on resolved addresses, and the undici connector below connects to the very
 * address it checked, so a name that resolves differently a second time (DNS rebinding) gains
 * nothing.
 *
 * Gleaner's own corpus server is let through by URL prefix (`/corpus/<provider>/` of its own
 * origin), never by origin: the same port answers the API, /metrics and /openapi.json, which a
 * page (a link, a redirect, a script) must not be able to read into a row's evidence.
 */

export interface ResolvedAddress {
  address: string;
  family: 4 | 6;
}

/** Turns a hostname into addresses. Tests inject one; the default asks the system resolver. */
export type Resolver = (hostname: string) => Promise<ResolvedAddress[]>;

export const systemResolver: Resolver = async (hostname) => {
  const found = await dnsLookup(hostname, { all: true, verbatim: true });
  return found.map((a) => ({ address: a.address, family: a.family === 6 ? 6 : 4 }));
};

export interface SsrfGuardOptions {
  /** Hostnames (`fixture.test`, `*.corp.example`), addresses and CIDR ranges let through. */
  allow?: readonly string[];
  /**
   * URL prefixes (`http://127.0.0.1:9464/corpus/docs/`) let through whatever their host resolves
   * to: Gleaner's own corpus folders, without opening every port of the loopback address with
   * `allow`. A prefix names a folder (its path ends in `/`, and is not `/` alone); a URL passes
   * when its origin is the prefix's and its path, dot segments resolved, starts with the
   * prefix's. Everything else on that origin is judged like any other URL.
   */
  allowPrefixes?: readonly string[];
  resolver?: Resolver;
}

export interface SsrfGuard {
  /** The verdict for one address, the allow list applied (`host` lets an allowed name through). */
  checkAddress(address: string, host?: string): AddressVerdict;
  /**
   * Resolves the URL's host and checks every address; throws SsrfRefusedError when any is refused
   * (one bad answer is enough: the connection could pick it). Returns the checked addresses.
   */
  assertUrlAllowed(url: string | URL): Promise<ResolvedAddress[]>;
  /** An undici dispatcher whose sockets connect only to addresses this guard checked. */
  readonly dispatcher: Dispatcher;
  close(): Promise<void>;
}

export interface GuardDispatcherOptions {
  /** Idle keep-alive sockets per origin; the politeness layer bounds the concurrency anyway. */
  connections?: number;
  keepAliveTimeoutMs?: number;
}

export function createSsrfGuard(
  options: SsrfGuardOptions = {},
  dispatcherOptions: GuardDispatcherOptions = {},
): SsrfGuard {
  const resolver = options.resolver ?? systemResolver;
  const allow = parseAllowList(options.allow ?? []);
  const prefixes = (options.allowPrefixes ?? []).map(parsePrefix);
  // host:port of each prefix: the rest of that port is refused whatever the scheme (an https://
  // or a WebSocket tunnel to it included), and even when `allow` opens its address.
  const prefixEndpoints = new Set(prefixes.map((p) => p.endpoint));
  const underPrefix = (url: URL, rawPath: string = url.pathname) =>
    prefixes.some(
      (p) =>
        p.origin === url.origin && url.pathname.startsWith(p.path) && rawPath.startsWith(p.path),
    );

  function checkAddress(address: string, host?: string): AddressVerdict {
    if (host !== undefined && allow.hostAllowed(host))
      return { allowed: true, range: "allow list" };
    const bare = stripBrackets(address);
    if (ipaddr.isValid(bare) && allow.addressAllowed(bare)) {
      return { allowed: true, range: "allow list" };
    }
    return classifyAddress(bare);
  }

  async function resolveChecked(hostname: string, url: string): Promise<ResolvedAddress[]> {
    const host = stripBrackets(hostname).toLowerCase();
    let addresses: ResolvedAddress[];
    if (isIP(host)) {
      addresses = [{ address: host, family: isIP(host) === 6 ? 6 : 4 }];
    } else {
      try {
        addresses = await resolver(host);
      } catch (error) {
        throw new CrawlError("connection", `cannot resolve ${host} for ${url}`, {
          url,
          cause: error,
        });
      }
      if (addresses.length === 0) {
        throw new CrawlError("connection", `${host} resolved to no address for ${url}`, { url });
      }
    }
    for (const { address } of addresses) {
      const verdict = checkAddress(address, host);
      if (!verdict.allowed) throw new SsrfRefusedError(url, address, verdict.range);
    }
    return addresses;
  }

  async function assertUrlAllowed(input: string | URL): Promise<ResolvedAddress[]> {
    const url = typeof input === "string" ? parseHttpUrl(input) : input;
    if (underPrefix(url)) {
      // Under an allowed prefix: resolved, not judged (callers connect to the address returned).
      const host = stripBrackets(url.hostname);
      if (isIP(host)) return [{ address: host, family: isIP(host) === 6 ? 6 : 4 }];
      return resolver(host);
    }
    if (prefixEndpoints.has(endpointOf(url.protocol, url.hostname, url.port)))
      throw new SsrfRefusedError(url.href, stripBrackets(url.hostname), OUTSIDE_PREFIXES);
    return resolveChecked(url.hostname, url.href);
  }

  // undici's own connector does the TCP/TLS work; this one resolves and checks first, then hands
  // it the checked address as `hostname`. `host` (with the name) stays, so SNI and certificate
  // checks still use the name.
  const baseConnect = buildConnector({});
  // A connection carries no path, so the port of a prefix is let through here; the interceptor
  // below has refused, before this, every request to that port outside the prefixes.
  const guardedConnect: buildConnector.connector = (connectOptions, callback) => {
    const url = `${connectOptions.protocol}//${connectOptions.host}`;
    const { protocol, hostname, port } = connectOptions;
    if (prefixEndpoints.has(endpointOf(protocol, hostname, port))) {
      baseConnect(connectOptions, callback);
      return;
    }
    resolveChecked(connectOptions.hostname, url).then(
      (addresses) => {
        const first = addresses[0] as ResolvedAddress;
        baseConnect({ ...connectOptions, hostname: first.address }, callback);
      },
      (error: Error) => callback(error, null),
    );
  };

  const agent = new Agent({
    connect: guardedConnect,
    connections: dispatcherOptions.connections ?? null,
    keepAliveTimeout: dispatcherOptions.keepAliveTimeoutMs ?? 4_000,
  });
  // Every request to the origin of a prefix is checked by path: one sent through the dispatcher
  // without assertUrlAllowed first must not reach the rest of that origin either. The raw path
  // (what the server routes on) and the resolved one must both be under a prefix.
  const dispatcher =
    prefixes.length === 0
      ? agent
      : agent.compose((dispatch) => (request, handler) => {
          const target = new URL(request.path, String(request.origin));
          const endpoint = endpointOf(target.protocol, target.hostname, target.port);
          if (prefixEndpoints.has(endpoint) && !underPrefix(target, request.path))
            throw new SsrfRefusedError(
              target.href,
              stripBrackets(target.hostname),
              OUTSIDE_PREFIXES,
            );
          return dispatch(request, handler);
        });

  return {
    checkAddress,
    assertUrlAllowed,
    dispatcher,
    close: () => agent.close(),
  };
}

/** Why a URL on the origin of an allowed prefix, but outside every prefix, was refused. */
export const OUTSIDE_PREFIXES = "outside the allowed URL prefixes of its origin";

interface UrlPrefix {
  origin: string;
  endpoint: string;
  path: string;
}

function parsePrefix(text: string): UrlPrefix {
  const url = parseHttpUrl(text);
  if (url.pathname === "/" || !url.pathname.endsWith("/") || url.search || url.hash)
    throw new Error(
      `allowPrefixes: "${text}" must name a folder below its origin, ending in "/", with no query`,
    );
  return {
    origin: url.origin,
    endpoint: endpointOf(url.protocol, url.hostname, url.port),
    path: url.pathname,
  };
}

/** `host:port` with the scheme's default port filled in, IPv6 in brackets. */
function endpointOf(protocol: string, hostname: string, port: string | number | undefined) {
  const p = port === undefined || port === "" ? (protocol === "https:" ? "443" : "80") : port;
  const host = stripBrackets(hostname).toLowerCase();
  return `${host.includes(":") ? `[${host}]` : host}:${p}`;
}

/** Parses a URL the crawler may fetch: http or https only (no file:, ftp:, data: …). */
export function parseHttpUrl(input: string): URL {
  let url: URL;
  try {
    url = new URL(input);
  } catch (error) {
    throw new CrawlError("invalid_url", `not a URL: ${input}`, { url: input, cause: error });
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new CrawlError("invalid_url", `only http and https URLs are crawled, not ${input}`, {
      url: input,
    });
  }
  return url;
}
