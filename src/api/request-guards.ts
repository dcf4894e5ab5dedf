import type { IncomingMessage } from "node:http";
import { isIP } from "node:net";

/** True for a loopback address as the socket reports it (IPv4, IPv6, IPv4-mapped IPv6). */
export function isLoopback(address: string | undefined): boolean {
  if (address === undefined || isIP(address) === 0) return false;
  return address === "::1" || /^(::ffff:)?127\./.test(address);
}

/** `name`, `name:port`, `[v6]` or `[v6]:port`, and nothing else (no user info, path or `#`). */
const HOST_HEADER = /^(?:\[([0-9a-f:.]+)\]|([a-z0-9.-]+))(?::\d{1,5})?$/i;

/**
 * True when a Host header names this machine's loopback interface: `localhost`, a 127.0.0.0/8
 * address or `[::1]`, with or without a port. None of them can be a name a web site controls,
 * so a page that rebinds its own DNS name to 127.0.0.1 still sends its own name, and is refused.
 */
export function isLoopbackHost(host: string | undefined): boolean {
  const match = HOST_HEADER.exec(host ?? "");
  if (!match) return false;
  const name = (match[1] ?? match[2] ?? "").toLowerCase();
  return name === "localhost" || isLoopback(name);
}

/**
 * With no api.tokens, nothing but the network guards the API, so it answers only requests
 * addressed to a loopback name (DNS rebinding would otherwise let any web page a local user
 * opens read and drive it). Returns why a request is refused, or undefined.
 */
export function foreignHostRefusal(req: IncomingMessage): string | undefined {
  const host = req.headers.host;
  if (isLoopbackHost(host)) return undefined;
  return `Host ${JSON.stringify(host ?? "")} is not a loopback name: with no api.tokens configured, the API and status page answer only requests addressed to localhost, 127.0.0.1 or [::1] (this refuses DNS rebinding); to serve other names, configure api.tokens`;
}

const STATE_CHANGING = new Set(["POST", "PUT", "PATCH", "DELETE"]);
/** The types an HTML form, or a fetch without a CORS preflight, may send from any web site. */
const FORM_TYPES = new Set([
  "application/x-www-form-urlencoded",
  "multipart/form-data",
  "text/plain",
]);

/**
 * Refuses a state-changing request a browser sent on behalf of another site (cross-site request
 * forgery): `Sec-Fetch-Site` says cross-site or same-site, or `Origin` is not this server's own
 * (compared with the Host the request was sent to; `null` comes from sandboxed and file pages).
 * Clients other than browsers send neither header and are not affected. Returns why, or
 * undefined.
 */
export function crossSiteRefusal(req: IncomingMessage): string | undefined {
  if (!STATE_CHANGING.has(req.method ?? "")) return undefined;
  const site = req.headers["sec-fetch-site"];
  if (site === "cross-site" || site === "same-site")
    return `Sec-Fetch-Site: ${site}: the browser sent this ${req.method} for another web site, and the API changes nothing on a web page's behalf`;
  const origin = req.headers.origin;
  if (origin === undefined) return undefined;
  if (originHost(origin) !== ownHost(req.headers.host))
    return `Origin ${origin} is not this server's own origin: the API changes nothing on another web page's behalf (behind a reverse proxy, pass the original Host header on)`;
  return undefined;
}

/**
 * Refuses the content types a cross-site HTML form can send, so that a state-changing route
 * never acts on a form post, even from a browser that sends no Origin. Returns why, or undefined.
 */
export function formContentRefusal(req: IncomingMessage): string | undefined {
  if (!STATE_CHANGING.has(req.method ?? "")) return undefined;
  const type = mediaType(req);
  if (type === undefined || !FORM_TYPES.has(type)) return undefined;
  return `content type ${type} is what an HTML form on any web site can send, so the API refuses it: send application/json (text/csv for rows), or no body`;
}

/** The media type of the request body, lower case, without parameters. */
export function mediaType(req: IncomingMessage): string | undefined {
  const type = req.headers["content-type"]?.split(";")[0]?.trim().toLowerCase();
  return type === "" ? undefined : type;
}

function originHost(origin: string): string | undefined {
  try {
    const url = new URL(origin);
    return url.protocol === "http:" || url.protocol === "https:" ? url.host : undefined;
  } catch {
    return undefined;
  }
}

/** The Host header as URL.host writes it: lower case, default port dropped. */
function ownHost(host: string | undefined): string | undefined {
  if (!HOST_HEADER.test(host ?? "")) return undefined;
  try {
    return new URL(`http://${host}`).host;
  } catch {
    return undefined;
  }
}
