import { lookup as dnsLookup } from "node:dns/promises";
import { isIP } from "node:net";
import ipaddr from "ipaddr.js";
import { Agent, buildConnector, type Dispatcher } from "undici";
import { CrawlError, SsrfRefusedError } from "./crawl-error.ts";

/**
 * The SSRF guard: a crawler fed URLs from search results and redirects must not become a way to
 * reach the machine it runs on, its network or the cloud metadata endpoint. Only globally routable
 * unicast addresses pass, unless the deployment names a host or range in `crawl.allow`.
 *
 * The check runs on resolved addresses, and the undici connector below connects to the very
 * address it checked, so a name that resolves differently a second time (DNS rebinding) gains
 * nothing.
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
   * Exact origins (`http://127.0.0.1:9464`) let through whatever they resolve to: Gleaner's own
   * corpus server, without opening every port of the loopback address with `allow`.
   */
  allowOrigins?: readonly string[];
  resolver?: Resolver;
}

export interface AddressVerdict {
  allowed: boolean;
  /** ipaddr.js's range name (`unicast` for public), or `allow list`. */
  range: string;
}

// IPv6 global unicast is 2000::/3; ipaddr.js calls anything it has no name for "unicast", which
// would let unassigned space such as ::2 or 4000:: through.
const IPV6_GLOBAL_UNICAST = ipaddr.parseCIDR("2000::/3");

/** Classifies one address with no allow list: public unicast or not, and which range. */
export function classifyAddress(address: string): AddressVerdict {
  const bare = stripBrackets(address);
  if (!ipaddr.isValid(bare)) return { allowed: false, range: "not an IP address" };
  let parsed = ipaddr.parse(bare);
  // ::ffff:a.b.c.d reaches the IPv4 host a.b.c.d: judge the IPv4 address.
  if (parsed.kind() === "ipv6" && (parsed as ipaddr.IPv6).isIPv4MappedAddress()) {
    parsed = (parsed as ipaddr.IPv6).toIPv4Address();
  }
  const range = parsed.range();
  if (range !== "unicast") return { allowed: false, range };
  if (parsed.kind() === "ipv6" && !parsed.match(IPV6_GLOBAL_UNICAST)) {
    return { allowed: false, range: "outside IPv6 global unicast" };
  }
  return { allowed: true, range };
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
  const origins = new Set((options.allowOrigins ?? []).map((o) => new URL(o).origin));
  const originAllowed = (protocol: string, host: string, port: string | number | undefined) => {
    if (origins.size === 0) return false;
    const defaultPort = protocol === "https:" ? "443" : "80";
    const p = port === undefined || port === "" ? defaultPort : String(port);
    const hostPart = host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
    return origins.has(new URL(`${protocol}//${hostPart}:${p}`).origin);
  };

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
    if (originAllowed(url.protocol, url.hostname, url.port)) {
      // Allowed as an origin: resolved, not judged (callers connect to the address returned).
      const host = stripBrackets(url.hostname);
      if (isIP(host)) return [{ address: host, family: isIP(host) === 6 ? 6 : 4 }];
      return resolver(host);
    }
    return resolveChecked(url.hostname, url.href);
  }

  // undici's own connector does the TCP/TLS work; this one resolves and checks first, then hands
  // it the checked address as `hostname`. `host` (with the name) stays, so SNI and certificate
  // checks still use the name.
  const baseConnect = buildConnector({});
  const guardedConnect: buildConnector.connector = (connectOptions, callback) => {
    const url = `${connectOptions.protocol}//${connectOptions.host}`;
    if (originAllowed(connectOptions.protocol, connectOptions.hostname, connectOptions.port)) {
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

  const dispatcher = new Agent({
    connect: guardedConnect,
    connections: dispatcherOptions.connections ?? null,
    keepAliveTimeout: dispatcherOptions.keepAliveTimeoutMs ?? 4_000,
  });

  return {
    checkAddress,
    assertUrlAllowed,
    dispatcher,
    close: () => dispatcher.close(),
  };
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

export interface AllowList {
  hostAllowed(host: string): boolean;
  addressAllowed(address: string): boolean;
}

/** Parses `crawl.allow`; throws on an entry that is not a host, *.suffix, address or CIDR. */
export function parseAllowList(entries: readonly string[]): AllowList {
  const hosts = new Set<string>();
  const suffixes: string[] = [];
  const ranges: [ipaddr.IPv4 | ipaddr.IPv6, number][] = [];
  for (const raw of entries) {
    const entry = stripBrackets(raw.trim().toLowerCase());
    if (entry.includes("/")) {
      try {
        ranges.push(ipaddr.parseCIDR(entry));
      } catch (error) {
        throw new Error(`crawl.allow: "${raw}" is not a CIDR range`, { cause: error });
      }
    } else if (ipaddr.isValid(entry)) {
      const address = ipaddr.parse(entry);
      ranges.push([address, address.kind() === "ipv4" ? 32 : 128]);
    } else if (!/^(\*\.)?[a-z0-9_-]+(\.[a-z0-9_-]+)*\.?$/.test(entry)) {
      throw new Error(`crawl.allow: "${raw}" is not a host name, *.suffix, address or CIDR range`);
    } else if (entry.startsWith("*.")) {
      suffixes.push(entry.slice(1));
    } else {
      hosts.add(entry);
    }
  }
  return {
    hostAllowed: (host) => {
      const h = stripBrackets(host).toLowerCase();
      return hosts.has(h) || suffixes.some((s) => h.endsWith(s));
    },
    addressAllowed: (address) => {
      let parsed = ipaddr.parse(address);
      if (parsed.kind() === "ipv6" && (parsed as ipaddr.IPv6).isIPv4MappedAddress()) {
        parsed = (parsed as ipaddr.IPv6).toIPv4Address();
      }
      // match() throws across families, so compare only ranges of the same kind.
      return ranges.some(
        ([range, bits]) => range.kind() === parsed.kind() && parsed.match(range, bits),
      );
    },
  };
}

function stripBrackets(host: string): string {
  return host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
}
