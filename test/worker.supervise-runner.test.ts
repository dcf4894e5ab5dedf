import { expect, it } from "vitest";
import { superviseRunner, type StoppableRunner } from "../src/worker/supervise-runner.ts";
import { waitFor } from "./support/gleaner-process.ts";

/** A runner whose end the test decides, as graphile-worker's pool ends on a long outage. */
function fakeRunner(): StoppableRunner & { end(): void; stopped: boolean } {
  let end!: () => void;
  const promise = new Promise<void>((resolve) => (end = resolve));
  const runner = {
    promise,
    stopped: false,
    end,
    async stop() {
      runner.stopped = true;
      end();
      await promise;
    },
  };
  return runner;
}

it("starts a runner again when it stops on its own, with backoff while starting fails", async () => {
  const launched: ReturnType<typeof fakeRunner>[] = [];
  let failures = 0;
  const lines: string[] = [];
  const supervised = await superviseRunner(
    () => {
      // The second and third starts fail: the database is still away.
      if (launched.length === 1 && failures < 2) {
        failures++;
        return Promise.reject(new Error("connect ECONNREFUSED 127.0.0.1:5432"));
      }
      const runner = fakeRunner();
      launched.push(runner);
      return Promise.resolve(runner);
    },
    { log: (m) => lines.push(m), delaysMs: [1, 2, 4] },
  );
  expect(launched).toHaveLength(1);
  expect(supervised.notReady()).toBeUndefined();

  launched[0]?.end();
  await waitFor("a second runner", () => launched.length === 2);
  expect(failures).toBe(2);
  expect(supervised.notReady()).toBeUndefined();
  expect(lines.some((l) => l.includes("cannot start one yet: connect ECONNREFUSED"))).toBe(true);
  expect(lines.some((l) => l.includes("job runner started (after 3 attempts)"))).toBe(true);

  await supervised.stop();
  expect(launched[1]?.stopped).toBe(true);
  // A runner that ends because it was asked to is not started again.
  await new Promise((r) => setTimeout(r, 20));
  expect(launched).toHaveLength(2);
});

it("says it is not ready while no runner runs, and stop() ends the restart loop", async () => {
  const launched: ReturnType<typeof fakeRunner>[] = [];
  let allow = true;
  const supervised = await superviseRunner(
    () => {
      if (!allow) return Promise.reject(new Error("the database system is starting up"));
      const runner = fakeRunner();
      launched.push(runner);
      return Promise.resolve(runner);
    },
    { log: () => undefined, delaysMs: [1] },
  );
  allow = false;
  launched[0]?.end();
  await waitFor("not ready", () => supervised.notReady() !== undefined);
  expect(supervised.notReady()).toMatch(/job runner stopped/);
  await supervised.stop();
  allow = true;
  await new Promise((r) => setTimeout(r, 20));
  expect(launched).toHaveLength(1);
});

it("replaces a runner: the new one starts before the old one is stopped", async () => {
  const launched: ReturnType<typeof fakeRunner>[] = [];
  const events: string[] = [];
  const supervised = await superviseRunner(
    () => {
      const runner = fakeRunner();
      const index = launched.length;
      const stop = runner.stop.bind(runner);
      runner.stop = async () => {
        events.push(`stop ${index}`);
        await stop();
      };
      launched.push(runner);
      events.push(`start ${index}`);
      return Promise.resolve(runner);
    },
    { log: () => undefined, delaysMs: [1] },
  );
  // Two calls at once make one replacement.
  await Promise.all([supervised.replace("a lost completion"), supervised.replace("another")]);
  expect(events).toEqual(["start 0", "start 1", "stop 0"]);
  // The old runner ending is not taken for a crash of the new one.
  await new Promise((r) => setTimeout(r, 20));
  expect(launched).toHaveLength(2);
  await supervised.stop();
  expect(events).toEqual(["start 0", "start 1", "stop 0", "stop 1"]);
});
