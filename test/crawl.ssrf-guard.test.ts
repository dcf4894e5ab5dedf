import { subscribe, unsubscribe } from "node:diagnostics_channel";
import { request } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SsrfRefusedError } from "../src/crawl/crawl-error.ts";
import { classifyAddress } from "../src/core/address-ranges.ts";
import { createSsrfGuard, type Resolver } from "../src/crawl/ssrf-guard.ts";
import { startFixtureSite, type FixtureSite } from "./support/fixture-site.ts";

/**
 * The SSRF guard: which addresses pass (classification only, no traffic leaves loopback), the
 * allow list by host and by range, and the undici connector that connects only to what it
 * checked, with DNS answered by injected resolvers.
 */

const table: [string, boolean][] = [
  ["127.0.0.1", false],
  ["127.8.9.10", false],
  ["::1", false],
  ["[::1]", false],
  ["10.0.0.1", false],
  ["172.16.0.1", false],
  ["172.31.255.255", false],
  ["192.168.1.1", false],
  ["169.254.169.254", false],
  ["fe80::1", false],
  ["fd00::1", false],
  ["fc00::1", false],
  ["::ffff:127.0.0.1", false],
  ["::ffff:10.0.0.1", false],
  ["::ffff:169.254.169.254", false],
  ["0.0.0.0", false],
  ["0.1.2.3", false],
  ["::", false],
  ["100.64.0.1", false],
  ["100.127.255.255", false],
  ["224.0.0.1", false],
  ["ff02::1", false],
  ["255.255.255.255", false],
  ["192.0.2.10", false], // TEST-NET-1
  ["198.51.100.7", false], // TEST-NET-2
  ["203.0.113.9", false], // TEST-NET-3
  ["198.18.0.1", false], // benchmarking
  ["240.0.0.1", false], // reserved
  ["2001:db8::1", false], // documentation
  ["64:ff9b::a00:1", false], // NAT64 of 10.0.0.1
  ["2002:a00:1::", false], // 6to4 of 10.0.0.1
  ["not-an-address", false],
  ["8.8.8.8", true],
  ["1.1.1.1", true],
  ["172.32.0.1", true], // just outside 172.16/12
  ["100.128.0.1", true], // just outside 100.64/10
  ["::ffff:8.8.8.8", true],
  ["2606:4700:4700::1111", true],
];

describe("classifyAddress", () => {
  it.each(table)("%s allowed=%s", (address, allowed) => {
    expect(classifyAddress(address).allowed).toBe(allowed);
  });

  it("names the range it refused", () => {
    expect(classifyAddress("169.254.169.254").range).toBe("linkLocal");
    expect(classifyAddress("::ffff:10.0.0.1").range).toBe("private");
    expect(classifyAddress("100.64.0.1").range).toBe("carrierGradeNat");
  });
});

describe("allow list", () => {
  const guard = createSsrfGuard({
    allow: ["127.0.0.1/32", "fixture.test", "*.corp.example", "10.1.0.0/16", "fd12::/16"],
  });
  afterAll(() => guard.close());

  it("lets a CIDR range through and nothing next to it", () => {
    expect(guard.checkAddress("127.0.0.1").allowed).toBe(true);
    expect(guard.checkAddress("::ffff:127.0.0.1").allowed).toBe(true);
    expect(guard.checkAddress("127.0.0.2").allowed).toBe(false);
    expect(guard.checkAddress("10.1.200.3").allowed).toBe(true);
    expect(guard.checkAddress("10.2.0.1").allowed).toBe(false);
    expect(guard.checkAddress("fd12::5").allowed).toBe(true);
    expect(guard.checkAddress("fd13::5").allowed).toBe(false);
  });

  it("lets named hosts through whatever they resolve to", () => {
    expect(guard.checkAddress("192.168.0.9", "fixture.test").allowed).toBe(true);
    expect(guard.checkAddress("192.168.0.9", "wiki.corp.example").allowed).toBe(true);
    expect(guard.checkAddress("192.168.0.9", "corp.example.evil").allowed).toBe(false);
  });

  it("rejects a malformed range at start", () => {
    expect(() => createSsrfGuard({ allow: ["10.0.0.0/99"] })).toThrow(/crawl.allow/);
  });
});

describe("after DNS resolution", () => {
  const zone: Record<string, string[]> = {
    "public.test": ["93.184.216.34"],
    "internal.test": ["10.0.0.7"],
    "mixed.test": ["93.184.216.34", "192.168.0.1"],
    "metadata.test": ["169.254.169.254"],
    "fixture.test": ["127.0.0.1"],
  };
  const asked: string[] = [];
  const resolver: Resolver = (hostname) => {
    asked.push(hostname);
    return Promise.resolve(
      (zone[hostname] ?? []).map((address) => ({
        address,
        family: address.includes(":") ? (6 as const) : (4 as const),
      })),
    );
  };
  const guard = createSsrfGuard({ resolver });
  afterAll(() => guard.close());

  it("refuses a name that resolves to a private address", async () => {
    const error = await guard.assertUrlAllowed("http://internal.test/x").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SsrfRefusedError);
    expect(error).toMatchObject({
      url: "http://internal.test/x",
      address: "10.0.0.7",
      reason: "private",
      errorClass: "ssrf_refused",
    });
  });

  it("refuses when any one of the addresses is forbidden", async () => {
    await expect(guard.assertUrlAllowed("http://mixed.test/")).rejects.toMatchObject({
      address: "192.168.0.1",
    });
  });

  it("passes a public name (checked only: nothing is fetched)", async () => {
    await expect(guard.assertUrlAllowed("https://public.test/")).resolves.toEqual([
      { address: "93.184.216.34", family: 4 },
    ]);
  });

  it("refuses IP literals in URLs without asking DNS, including the bracketed IPv6 form", async () => {
    const before = asked.length;
    await expect(guard.assertUrlAllowed("http://[::ffff:7f00:1]/")).rejects.toBeInstanceOf(
      SsrfRefusedError,
    );
    await expect(guard.assertUrlAllowed("http://0x7f.1/")).rejects.toMatchObject({
      address: "127.0.0.1",
    });
    expect(asked.length).toBe(before);
  });

  it("a name that does not resolve is a connection error, not a pass", async () => {
    await expect(guard.assertUrlAllowed("http://nowhere.test/")).rejects.toMatchObject({
      errorClass: "connection",
    });
  });

  it("refuses non-http schemes", async () => {
    await expect(guard.assertUrlAllowed("file:///etc/passwd")).rejects.toMatchObject({
      errorClass: "invalid_url",
    });
  });
});

describe("the guarded undici dispatcher", () => {
  let site: FixtureSite;
  const connected: string[] = [];
  const onConnected = (message: unknown) => {
    const { socket } = message as { socket: { remoteAddress?: string } };
    connected.push(socket.remoteAddress ?? "?");
  };
  const resolver: Resolver = (hostname) =>
    Promise.resolve(
      hostname === "fixture.test" || hostname === "other.test"
        ? [{ address: "127.0.0.1", family: 4 }]
        : hostname === "metadata.test"
          ? [{ address: "169.254.169.254", family: 4 }]
          : [],
    );

  beforeAll(async () => {
    site = await startFixtureSite();
    subscribe("undici:client:connected", onConnected);
  });
  afterAll(async () => {
    unsubscribe("undici:client:connected", onConnected);
    await site.close();
  });

  it("refuses the fixture site on loopback by default, before connecting", async () => {
    const guard = createSsrfGuard({ resolver });
    try {
      const before = connected.length;
      const error = await request(site.url("/about.html"), { dispatcher: guard.dispatcher }).catch(
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(SsrfRefusedError);
      expect(error).toMatchObject({ address: "127.0.0.1", reason: "loopback" });
      expect(connected.length).toBe(before);
      expect(site.hits("/about.html")).toBe(0);
    } finally {
      await guard.close();
    }
  });

  it("connects to the address the injected resolver gave, for an allowed name", async () => {
    const guard = createSsrfGuard({ resolver, allow: ["fixture.test"] });
    try {
      const before = connected.length;
      const response = await request(`http://fixture.test:${site.port}/about.html`, {
        dispatcher: guard.dispatcher,
      });
      expect(response.statusCode).toBe(200);
      await response.body.text();
      expect(site.requests.at(-1)?.headers.host).toBe(`fixture.test:${site.port}`);
      // The diagnostics channel does see connections: the "nothing connected" checks mean something.
      expect(connected.slice(before)).toEqual(["127.0.0.1"]);
      // The allow list names one host: another name resolving to loopback is still refused.
      await expect(
        request(`http://other.test:${site.port}/about.html`, { dispatcher: guard.dispatcher }),
      ).rejects.toBeInstanceOf(SsrfRefusedError);
    } finally {
      await guard.close();
    }
  });

  it("refuses in the connector a name resolving to the metadata address: no socket opened", async () => {
    const guard = createSsrfGuard({ resolver, allow: ["127.0.0.1/32"] });
    try {
      const before = connected.length;
      await expect(
        request("http://metadata.test/latest/meta-data", { dispatcher: guard.dispatcher }),
      ).rejects.toMatchObject({ address: "169.254.169.254", reason: "linkLocal" });
      expect(connected.length).toBe(before);
    } finally {
      await guard.close();
    }
  });
});
