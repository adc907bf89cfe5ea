import { describe, expect, it } from "vitest";
import { claimCandidate } from "../../../src/core/select/fps-kernel.js";

describe("claimCandidate", () => {
  it("claims a free candidate: returns its slots and marks it taken (-1)", () => {
    const fresh = new Int32Array(new SharedArrayBuffer(12)).fill(7);
    expect(claimCandidate(fresh, 1)).toBe(7);
    expect(Array.from(fresh)).toEqual([7, -1, 7]);
  });

  it("waits for a claim another thread holds, and gives up when it is never released", () => {
    const fresh = new Int32Array(new SharedArrayBuffer(8)).fill(-1);
    expect(() => claimCandidate(fresh, 1, 0.05)).toThrow(/held candidate 1 for 0.05 s/);
    expect(fresh[1]).toBe(-1);
  });
});
