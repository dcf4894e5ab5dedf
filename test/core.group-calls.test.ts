import { expect, it } from "vitest";
import { groupCalls } from "../src/core/group-calls.ts";

/** A batch function whose calls wait until the test lets them finish. */
function heldBatches() {
  const batches: { items: number[]; finish: (error?: Error) => void }[] = [];
  const batch = (items: number[]) =>
    new Promise<string[]>((resolve, reject) => {
      batches.push({
        items,
        finish: (error) => (error ? reject(error) : resolve(items.map((i) => `r${i}`))),
      });
    });
  return { batches, batch };
}

const turn = () => new Promise((r) => setImmediate(r));

it("sends the items asked for in the same turn as one batch, each caller getting its own result", async () => {
  const { batches, batch } = heldBatches();
  const call = groupCalls(batch);
  const results = Promise.all([call(1), call(2), call(3)]);
  await turn();
  expect(batches.map((b) => b.items)).toEqual([[1, 2, 3]]);
  batches[0]!.finish();
  expect(await results).toEqual(["r1", "r2", "r3"]);
});

it("with maxInFlight 1, gathers what arrives during a batch into the next one (group commit)", async () => {
  const { batches, batch } = heldBatches();
  const call = groupCalls(batch, { maxInFlight: 1 });
  const first = call(1);
  await turn();
  const later = [call(2), call(3)];
  await turn();
  const last = call(4);
  await turn();
  // Nothing else starts while the first batch runs.
  expect(batches.map((b) => b.items)).toEqual([[1]]);
  batches[0]!.finish();
  expect(await first).toBe("r1");
  await turn();
  expect(batches.map((b) => b.items)).toEqual([[1], [2, 3, 4]]);
  batches[1]!.finish();
  expect(await Promise.all([...later, last])).toEqual(["r2", "r3", "r4"]);
});

it("splits at maxItems and gives a failed batch's error to each of its callers only", async () => {
  const { batches, batch } = heldBatches();
  const call = groupCalls(batch, { maxInFlight: 2, maxItems: 2 });
  const calls = [1, 2, 3, 4, 5].map((i) => call(i));
  await turn();
  // Two batches of two run at once; the fifth item waits for a free slot.
  expect(batches.map((b) => b.items)).toEqual([
    [1, 2],
    [3, 4],
  ]);
  batches[0]!.finish(new Error("database went away"));
  await expect(calls[0]).rejects.toThrow("database went away");
  await expect(calls[1]).rejects.toThrow("database went away");
  await turn();
  expect(batches.map((b) => b.items)).toEqual([[1, 2], [3, 4], [5]]);
  batches[1]!.finish();
  batches[2]!.finish();
  expect(await Promise.all(calls.slice(2))).toEqual(["r3", "r4", "r5"]);
});
