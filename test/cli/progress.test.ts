import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { Progress } from "../../src/cli/progress.js";

/** A terminal of `columns` width that records what is written to it. */
function terminal(columns: number, isTTY = true): NodeJS.WriteStream & { written: string[] } {
  const written: string[] = [];
  return { isTTY, columns, written, write: (text: string) => written.push(text) } as unknown as NodeJS.WriteStream & { written: string[] };
}

describe("progress line", () => {
  const ci = process.env.CI;
  beforeEach(() => {
    delete process.env.CI;
    vi.useFakeTimers({ now: 1_000_000 });
  });
  afterEach(() => {
    if (ci !== undefined) process.env.CI = ci;
    vi.useRealTimers();
  });

  it("draws a bar at most ten times a second and clears it when done", () => {
    const stream = terminal(100);
    const progress = new Progress("rank", stream);
    progress.update("selecting 1/4", 0.25);
    progress.update("selecting 2/4", 0.5);
    vi.setSystemTime(1_000_150);
    progress.update("selecting 3/4", 0.75);
    progress.done();
    expect(stream.written).toEqual([
      "\r\x1b[2Krank [######..................] selecting 1/4",
      "\r\x1b[2Krank [##################......] selecting 3/4",
      "\r\x1b[2K",
    ]);
  });

  it("fits the line to the terminal, and to 80 columns when the terminal reports no width", () => {
    const narrow = terminal(20);
    new Progress("rank", narrow).update("reading pool 123456");
    expect(narrow.written).toEqual(["\r\x1b[2Krank reading pool 1"]);
    const unknown = terminal(0);
    new Progress("rank", unknown).update("selecting 840/1000", 0.84);
    expect(unknown.written[0]).toMatch(/selecting 840\/1000$/);
  });

  it("draws nothing off a terminal or under CI", () => {
    const pipe = terminal(100, false);
    new Progress("rank", pipe).update("x", 0.5);
    process.env.CI = "true";
    const underCi = terminal(100);
    new Progress("rank", underCi).update("x", 0.5);
    expect([...pipe.written, ...underCi.written]).toEqual([]);
  });
});
