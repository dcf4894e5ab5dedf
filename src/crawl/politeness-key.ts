import { getDomain } from "tldts";

/**
 * What one set of per-site limits covers: the registrable domain from the public suffix list
 * (`www.example.co.uk` and `shop.example.co.uk` are one site, `example.co.uk`), private suffixes
 * included, so two users' sites on one hosting suffix (`a.github.io`, `b.github.io`) are two
 * sites. An address or a name with no registrable domain (`127.0.0.1:8080`, `localhost:3000`,
 * `[::1]:80`) keeps its port: there is no owner to group by, and each port is a server of its own.
 */
export function politenessKey(host: string): string {
  const hostname = hostnameOf(host);
  const domain = getDomain(hostname, { allowPrivateDomains: true });
  return domain ?? host.toLowerCase();
}

/** The hostname of a URL's `host` (which may carry a port, and brackets around IPv6). */
function hostnameOf(host: string): string {
  if (host.startsWith("[")) return host.slice(0, host.indexOf("]") + 1);
  const colon = host.lastIndexOf(":");
  return (colon === -1 ? host : host.slice(0, colon)).toLowerCase();
}
