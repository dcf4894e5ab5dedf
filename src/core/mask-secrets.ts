/**
 * The one secret masker. Every message Gleaner prints, logs or stores passes through it, because
 * drivers, HTTP clients and servers like to echo connection strings, URLs and keys back.
 *
 * It masks, with `***`:
 * - known secrets (values from the environment, credential fields of the config) of at least
 *   MIN_SECRET_LENGTH characters, also in their percent-encoded and JSON-escaped forms. Shorter
 *   values (ports, `true`, `5m`) are left alone: masking them would garble unrelated words, and
 *   no real key is that short;
 * - the password of any URL with credentials (`postgres://u:pw@h/db` → `postgres://u:***@h/db`);
 * - the value of every credential-like query parameter (CREDENTIAL_PARAMETERS, any case) after a
 *   `?`, `&` or `;`, so a URL embedded in a longer message, even without its scheme and host
 *   (`404 Invalid URL (POST /v1?key=…)`), loses its key.
 */

export const MASK = "***";

/** Known secrets shorter than this are not masked in free text (see above). */
export const MIN_SECRET_LENGTH = 6;

/** Query parameter names whose values are credentials (compared in lower case). */
export const CREDENTIAL_PARAMETERS: readonly string[] = [
  "key",
  "api_key",
  "api-key",
  "apikey",
  "access_token",
  "token",
  "sig",
  "signature",
  "code",
  "password",
  "secret",
];

const CREDENTIAL_SET: ReadonlySet<string> = new Set(CREDENTIAL_PARAMETERS);

/** True for a query parameter name whose value is a credential. */
export function isCredentialParameter(name: string): boolean {
  return CREDENTIAL_SET.has(name.toLowerCase());
}

/**
 * True for a configured HTTP header or query parameter whose value is a credential
 * (`Authorization`, `api-key`, `X-Subscription-Token`, `subscription-key`, `Cookie`…). Others
 * (`HTTP-Referer`, `X-Title`, `api-version`) are not secrets: masking their values would blank
 * out ordinary words. Broader than CREDENTIAL_PARAMETERS, which are matched in free text.
 */
export function isCredentialName(name: string): boolean {
  return /auth|key|token|secret|sig|password|cookie/i.test(name);
}

/**
 * The secrets a URL carries: its password and its credential query parameters, each as written
 * and decoded.
 */
export function urlCredentials(url: string): string[] {
  const found: string[] = [];
  const span = passwordSpan(url);
  if (span) found.push(url.slice(span[0], span[1]));
  for (const match of url.matchAll(CREDENTIAL_QUERY)) found.push(match[0].slice(match[1]?.length));
  return [...new Set(found.flatMap((s) => [s, safeDecode(s)]))].filter((s) => s !== "");
}

// `scheme://user:password@`: the password runs to the last `@` before the path, so a password
// holding an unencoded `@` is masked whole.
const URL_PASSWORD = /(\b[a-z][a-z0-9+.-]*:\/\/[^\s:/?#@]*:)[^\s/?#]*@/gi;

// `?key=value`, `&token=value`, `;sig=value` (`&amp;sig=` in HTML): the value ends where a URL or
// a quoted URL in a sentence would.
const CREDENTIAL_QUERY = new RegExp(
  `([?&;](?:${CREDENTIAL_PARAMETERS.map(escapeRegExp).join("|")})=)[^&#\\s"'<>)\\]}\`]*`,
  "gi",
);

/** Masks URL passwords, credential query parameters and every known secret in `text`. */
export function maskSecrets(text: string, secrets: readonly string[] = []): string {
  let out = text
    .replace(URL_PASSWORD, `$1${MASK}@`)
    .replace(CREDENTIAL_QUERY, (_whole, name: string) => `${name}${MASK}`);
  for (const form of secretForms(secrets)) out = out.split(form).join(MASK);
  return out;
}

/**
 * Masks one value known to be a URL (a DATABASE_URL, a base_url). Beyond maskSecrets, the
 * password goes whatever its length, found the way a URL parser finds it (up to the last `@` of
 * the authority), so a space in it does not leave the rest readable; and in a value that does not
 * parse as a URL, everything between `scheme://user:` and the last `@` goes.
 */
export function maskUrl(url: string): string {
  // Without `scheme://` it is no URL at all (a password pasted in the wrong place, a libpq
  // `key=value` string): nothing of it can be shown safely.
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) return MASK;
  const span = passwordSpan(url);
  return maskSecrets(span ? `${url.slice(0, span[0])}${MASK}${url.slice(span[1])}` : url);
}

/** Where the password of a URL starts and ends, if it has one. */
function passwordSpan(url: string): [number, number] | undefined {
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(url);
  if (!scheme) return undefined;
  const start = scheme[0].length;
  const rest = url.slice(start);
  const authorityEnd = URL.canParse(url) ? rest.search(/[/?#\\]|$/) : rest.length;
  const at = rest.lastIndexOf("@", authorityEnd - 1);
  const colon = rest.indexOf(":");
  if (at === -1 || colon === -1 || colon > at) return undefined;
  return [start + colon + 1, start + at];
}

/** The strings to blank out: each long-enough secret as written, percent-encoded, JSON-escaped. */
function secretForms(secrets: readonly string[]): string[] {
  const forms = new Set<string>();
  for (const secret of secrets) {
    if (secret.length < MIN_SECRET_LENGTH) continue;
    forms.add(secret);
    forms.add(encodeURIComponent(secret));
    forms.add(JSON.stringify(secret).slice(1, -1));
  }
  // Longest first, so a secret that contains another is masked whole.
  return [...forms].sort((a, b) => b.length - a.length);
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text.replace(/\+/g, " "));
  } catch {
    // A malformed escape (`%ZZ`): the text as written is all there is to mask.
    return text;
  }
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\-]/g, "\\$&");
}
