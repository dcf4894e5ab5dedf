import { describe, expect, it } from "vitest";
import {
  CREDENTIAL_PARAMETERS,
  isCredentialName,
  maskSecrets,
  maskUrl,
  urlCredentials,
} from "../src/core/mask-secrets.ts";
import { parseConfig } from "../src/config/load-config.ts";
import { MINIMAL_CONFIG_YAML } from "./support/minimal-config.ts";

/**
 * The one secret masker every message passes through: known secrets, URL passwords and the
 * credential query parameters of URLs, also when the URL sits inside a longer message.
 */

describe("maskSecrets: known secrets", () => {
  it("masks known secrets and URL passwords", () => {
    const text = "401 for key sk-test-0123456789 at postgres://u:pw@h/db";
    expect(maskSecrets(text, ["sk-test-0123456789"])).toBe(
      "401 for key *** at postgres://u:***@h/db",
    );
  });

  it("leaves short values alone, so a port or 'true' does not garble messages", () => {
    expect(maskSecrets("listening on 5432, ssl true", ["5432", "true"])).toBe(
      "listening on 5432, ssl true",
    );
  });

  it("masks a secret percent-encoded or JSON-escaped as servers echo it", () => {
    const secret = 'k3y/with "quotes"+&';
    const text = `GET /x?k=${encodeURIComponent(secret)} failed: {"error":${JSON.stringify(secret)}}`;
    const masked = maskSecrets(text, [secret]);
    expect(masked).not.toContain(encodeURIComponent(secret));
    expect(masked).not.toContain(JSON.stringify(secret).slice(1, -1));
    expect(masked).toBe('GET /x?k=*** failed: {"error":"***"}');
  });

  it("masks a secret that contains another one whole", () => {
    expect(maskSecrets("token abcdef-123456", ["abcdef", "abcdef-123456"])).toBe("token ***");
  });

  it("masks the secrets a loaded config collected", () => {
    const config = parseConfig(MINIMAL_CONFIG_YAML.replace('"fake"', '"${MODEL}"'), {
      env: { MODEL: "model-from-the-environment" },
    });
    expect(maskSecrets("model model-from-the-environment unknown", config.secrets)).toBe(
      "model *** unknown",
    );
  });
});

describe("maskSecrets: URLs inside messages", () => {
  it("masks a URL password that holds an unencoded @", () => {
    expect(maskSecrets("cannot reach postgres://app:p@ss@db:5432/x")).toBe(
      "cannot reach postgres://app:***@db:5432/x",
    );
  });

  it.each(CREDENTIAL_PARAMETERS)("masks the query parameter %s, in any case", (name) => {
    const text = `GET https://api.example/v1?model=x&${name.toUpperCase()}=AIza-secret-value&n=1 failed`;
    expect(maskSecrets(text)).toBe(
      `GET https://api.example/v1?model=x&${name.toUpperCase()}=***&n=1 failed`,
    );
  });

  it("masks a key in a path-only URL echoed by a server, up to the closing parenthesis", () => {
    expect(
      maskSecrets("404 Invalid URL (POST /v1?key=AIza-secret-value%2Fchat%2Fcompletions)"),
    ).toBe("404 Invalid URL (POST /v1?key=***)");
  });

  it("masks a signature in an HTML-escaped URL and in a quoted one", () => {
    expect(maskSecrets('<a href="https://b.blob/x?sv=1&amp;sig=abc%2Bdef">')).toBe(
      '<a href="https://b.blob/x?sv=1&amp;sig=***">',
    );
    expect(maskSecrets("'https://h/p?token=t0k3n-value' refused")).toBe(
      "'https://h/p?token=***' refused",
    );
  });

  it("leaves parameters whose names only look alike", () => {
    const text = "https://h/search?keyword=rockets&monkey=1&keys=2&code_page=3";
    expect(maskSecrets(text)).toBe(text);
  });
});

describe("maskUrl", () => {
  it.each([
    [
      "a valid URL",
      "postgres://app:s3cret-pass@db:5432/gleaner",
      "postgres://app:***@db:5432/gleaner",
    ],
    [
      "a space in the password",
      "postgres://app:s3cret pass@db/gleaner",
      "postgres://app:***@db/gleaner",
    ],
    [
      "a # in the password",
      "postgres://app:s3cret#pass@db/gleaner",
      "postgres://app:***@db/gleaner",
    ],
    [
      "a / in the password",
      "postgres://app:s3cret/pass@db/gleaner",
      "postgres://app:***@db/gleaner",
    ],
    [
      "a bad port",
      "postgres://app:s3cret-pass@db:notaport/gleaner",
      "postgres://app:***@db:notaport/gleaner",
    ],
    ["a short password", "postgres://app:pw@db/gleaner", "postgres://app:***@db/gleaner"],
    [
      "a password parameter",
      "postgres://app@db/gleaner?password=s3cret",
      "postgres://app@db/gleaner?password=***",
    ],
  ])("masks the password of %s", (_label, url, masked) => {
    expect(maskUrl(url)).toBe(masked);
  });

  it("keeps a URL without credentials as it is", () => {
    expect(maskUrl("postgres://db:5432/gleaner?sslmode=require")).toBe(
      "postgres://db:5432/gleaner?sslmode=require",
    );
    expect(maskUrl("http://host:80/path@x")).toBe("http://host:80/path@x");
  });

  it("shows nothing of a value that is not a URL at all", () => {
    expect(maskUrl("s3cret-pasted-here")).toBe("***");
    expect(maskUrl("host=db password=s3cret")).toBe("***");
  });
});

describe("urlCredentials", () => {
  it("finds the password and credential parameters, as written and decoded", () => {
    expect(urlCredentials("https://u:p%40ss@h/v1?key=a%2Bb&x=1").sort()).toEqual(
      ["a%2Bb", "a+b", "p%40ss", "p@ss"].sort(),
    );
    expect(urlCredentials("postgres://app:s3cret pass@db/x")).toEqual(["s3cret pass"]);
    expect(urlCredentials("https://h/v1")).toEqual([]);
  });
});

describe("isCredentialName", () => {
  it.each(["Authorization", "api-key", "X-API-KEY", "X-Subscription-Token", "Cookie"])(
    "%s holds a credential",
    (name) => expect(isCredentialName(name)).toBe(true),
  );
  it.each(["HTTP-Referer", "X-Title", "Accept"])("%s does not", (name) =>
    expect(isCredentialName(name)).toBe(false),
  );
});
