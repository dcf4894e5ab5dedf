import { expect, it } from "vitest";
import { addUsage, NO_USAGE } from "../src/pipeline/row-state.ts";

it("adds usage per backend, keeping the first record's backends first", () => {
  const a = {
    input_tokens: 10,
    output_tokens: 2,
    cost_usd: 0.1,
    by_backend: { main: { input_tokens: 10, output_tokens: 2, cost_usd: 0.1 } },
  };
  const b = {
    input_tokens: 5,
    output_tokens: 1,
    cost_usd: 0.2,
    by_backend: {
      spare: { input_tokens: 3, output_tokens: 1, cost_usd: 0.15 },
      main: { input_tokens: 2, output_tokens: 0, cost_usd: 0.05 },
    },
  };
  const sum = addUsage(a, b);
  expect(sum).toEqual({
    input_tokens: 15,
    output_tokens: 3,
    cost_usd: 0.3,
    by_backend: {
      main: { input_tokens: 12, output_tokens: 2, cost_usd: 0.15 },
      spare: { input_tokens: 3, output_tokens: 1, cost_usd: 0.15 },
    },
  });
  // The order is what the row state's JSON shows.
  expect(Object.keys(sum.by_backend ?? {})).toEqual(["main", "spare"]);
  // 0.1 + 0.2 is rounded, not 0.30000000000000004.
  expect(sum.cost_usd).toBe(0.3);
});

it("has no per-backend part when neither record has a backend", () => {
  expect(addUsage(undefined, NO_USAGE)).toEqual({ input_tokens: 0, output_tokens: 0, cost_usd: 0 });
  expect(addUsage({ ...NO_USAGE, by_backend: {} }, undefined)).not.toHaveProperty("by_backend");
  // A record read back from an older state may lack a count: it counts as 0.
  const old = { by_backend: { main: { input_tokens: 4 } } } as unknown as Parameters<
    typeof addUsage
  >[0];
  expect(addUsage(old, undefined).by_backend).toEqual({
    main: { input_tokens: 4, output_tokens: 0, cost_usd: 0 },
  });
});
