import { describe, expect, it } from "vitest";
import {
  MAX_RETRY_AFTER_MS,
  parseRetryAfter,
  retryAfterFromHeaders,
} from "../src/core/retry-after.ts";

/** The one Retry-After reader of LLM, search and crawl calls: both RFC 9110 forms, caps, garbage. */

const now = Date.parse("2025-01-01T00:00:00Z");

describe("parseRetryAfter", () => {
  it("reads delta-seconds, fractional ones included (LLM gateways send them)", () => {
    expect(parseRetryAfter("120", now)).toBe(120_000);
    expect(parseRetryAfter(" 0 ", now)).toBe(0);
    expect(parseRetryAfter("0.5", now)).toBe(500);
    expect(parseRetryAfter(["7", "9"], now)).toBe(7_000);
  });

  it("reads the three HTTP-date forms against the injected now, all as GMT", () => {
    expect(parseRetryAfter("Wed, 01 Jan 2025 00:00:30 GMT", now)).toBe(30_000);
    expect(parseRetryAfter("Wednesday, 01-Jan-25 00:00:45 GMT", now)).toBe(45_000);
    expect(parseRetryAfter("Wed Jan  1 00:01:00 2025", now)).toBe(60_000);
    expect(parseRetryAfter("Tue, 31 Dec 2024 00:00:00 GMT", now)).toBe(0);
  });

  it("caps a long wait", () => {
    expect(parseRetryAfter("999999999", now)).toBe(MAX_RETRY_AFTER_MS);
    expect(parseRetryAfter("Fri, 01 Jan 2100 00:00:00 GMT", now)).toBe(MAX_RETRY_AFTER_MS);
    expect(parseRetryAfter("600", now, 1_000)).toBe(1_000);
  });

  it("gives undefined for garbage rather than a guess", () => {
    for (const value of [
      undefined,
      null,
      "",
      "soon",
      "-5",
      "1e3",
      "5 seconds",
      "2025-01-01T00:00:30Z",
      "Wed, 01 Jan 2025 00:00:30",
      "Infinity",
      "0x10",
    ]) {
      expect(parseRetryAfter(value, now), String(value)).toBeUndefined();
    }
  });
});

describe("retryAfterFromHeaders", () => {
  const headers = (values: Record<string, string>): Headers => new Headers(values);

  it("prefers retry-after-ms, then retry-after", () => {
    expect(retryAfterFromHeaders(headers({ "retry-after-ms": "250" }), now)).toBe(250);
    expect(
      retryAfterFromHeaders(headers({ "retry-after-ms": "250", "retry-after": "9" }), now),
    ).toBe(250);
    expect(retryAfterFromHeaders(headers({ "retry-after-ms": "x", "retry-after": "3" }), now)).toBe(
      3_000,
    );
    expect(retryAfterFromHeaders(headers({}), now)).toBeUndefined();
    expect(retryAfterFromHeaders(undefined, now)).toBeUndefined();
  });
});
