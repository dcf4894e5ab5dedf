import { describe, expect, it } from "vitest";
import { createProgressReporter } from "../src/cli/progress-reporter.ts";

function fakeStream(isTTY: boolean) {
  const chunks: string[] = [];
  return {
    chunks,
    stream: { isTTY, write: (s: string) => chunks.push(s) } as unknown as NodeJS.WriteStream,
  };
}

describe("createProgressReporter", () => {
  it("draws a bar with rate and ETA on a terminal, redrawing in place", () => {
    let t = 0;
    const { chunks, stream } = fakeStream(true);
    const r = createProgressReporter(stream, { now: () => t });
    r.update([{ pipeline: "companies", total: 100, settled: 0, inFlight: 10 }]);
    t = 10_000;
    r.update([{ pipeline: "companies", total: 100, settled: 50, inFlight: 10 }]);
    expect(chunks[0]).toContain("companies [------------------------] 0/100 0.0%");
    expect(chunks[1]).toBe("\x1b[1A");
    expect(chunks[2]).toContain(
      "companies [############------------] 50/100 50.0% 5.0 rows/s ETA 10s",
    );
  });

  it("says nothing of rows in flight where there are none by nature (an import)", () => {
    const { chunks, stream } = fakeStream(false);
    const r = createProgressReporter(stream, { now: () => 0 });
    r.update([{ pipeline: "import p", total: 10, settled: 4 }]);
    expect(chunks).toEqual(["import p: 4/10 40.0% 0.0 rows/s ETA –\n"]);
  });

  it("writes plain lines, at most one per interval, when not a terminal", () => {
    let t = 0;
    const { chunks, stream } = fakeStream(false);
    const r = createProgressReporter(stream, { now: () => t, intervalMs: 5000 });
    r.update([{ pipeline: "p", total: 10, settled: 0, inFlight: 2 }]);
    t = 1000;
    r.update([{ pipeline: "p", total: 10, settled: 5, inFlight: 2 }]);
    t = 6000;
    r.update([{ pipeline: "p", total: 10, settled: 6, inFlight: 1 }]);
    expect(chunks).toEqual([
      "p: 0/10 0.0% 0.0 rows/s ETA –, 2 in flight\n",
      "p: 6/10 60.0% 1.0 rows/s ETA 4s, 1 in flight\n",
    ]);
    expect(chunks.join("")).not.toContain("\x1b");
  });
});
