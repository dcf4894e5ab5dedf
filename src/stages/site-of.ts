/** Links are followed within a site: the same host, `www.` aside, and the same port. */
export function siteOf(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname.replace(/^www\./, "")}:${u.port}`;
  } catch {
    return "";
  }
}

/** A URL without its fragment: `#part` names a place in the same page. */
export function withoutFragment(url: string): string {
  const hash = url.indexOf("#");
  return hash === -1 ? url : url.slice(0, hash);
}
