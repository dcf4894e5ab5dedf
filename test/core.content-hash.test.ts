import { expect, it } from "vitest";
import { canonicalJson, canonicalOnce, contentHash } from "../src/core/content-hash.ts";

const sample = {
  b: [1, undefined, NaN, "é"],
  a: { z: null, y: undefined, "10": true, "9": 1.5 },
  d: new Date(0),
};

it("writes keys sorted at every level, leaving out undefined members as JSON does", () => {
  expect(canonicalJson(sample)).toBe(
    '{"a":{"10":true,"9":1.5,"z":null},"b":[1,null,null,"é"],"d":"1970-01-01T00:00:00.000Z"}',
  );
  expect(contentHash({ x: 1, y: 2 })).toBe(contentHash({ y: 2, x: 1 }));
});

it("keeps the hash the answer cache and stage records were keyed with", () => {
  // Changing it would make every stored LLM answer and stage record unreachable.
  expect(contentHash(sample)).toBe(
    "f5a5865ac61dbcfdc8a4989d5e5528e0ff20c690d84a045b30788106beb2a276",
  );
});

it("hashes a value serialised once exactly as the value itself", () => {
  const schema = { type: "object", properties: { label: { type: "string" } } };
  const once = canonicalOnce(schema);
  expect(canonicalOnce(schema)).toBe(once);
  expect(contentHash({ prompt: "p", schema: once })).toBe(contentHash({ prompt: "p", schema }));
});
