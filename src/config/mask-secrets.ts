/**
 * Replaces every known secret, and the password of any URL with credentials, by "***".
 * Used on every message Gleaner prints or stores, because errors from drivers and HTTP clients
 * like to echo connection strings and headers back.
 */
export function maskSecrets(text: string, secrets: readonly string[]): string {
  let out = text.replace(/(\b[a-z][a-z0-9+.-]*:\/\/[^:/?#\s@]*:)([^@/\s]+)@/gi, "$1***@");
  for (const secret of secrets) {
    // Short values (ports, "true") are not secrets and masking them would garble messages.
    if (secret.length >= 6) out = out.split(secret).join("***");
  }
  return out;
}

export function maskUrl(url: string): string {
  return maskSecrets(url, []);
}
