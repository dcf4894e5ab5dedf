import ipaddr from "ipaddr.js";

/**
 * Which addresses are public, and the `crawl.allow` list: the address rules the SSRF guard
 * enforces (src/crawl/ssrf-guard.ts) and the config checks (a backend on a private address needs
 * no key; an allow entry must parse). Here, below both, so the config does not import the crawler.
 */

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

export function stripBrackets(host: string): string {
  return host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
}
