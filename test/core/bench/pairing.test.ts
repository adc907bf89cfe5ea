import { describe, expect, it } from "vitest";
import { pairByIdentity } from "../../../src/core/bench/pairing.js";

describe("pairByIdentity", () => {
  it("pairs by id whatever the order", () => {
    const p = pairByIdentity(["c", "a", "b"], ["a", "b", "c"]);
    expect(p.pairs).toEqual([
      [0, 2],
      [1, 0],
      [2, 1],
    ]);
    expect(p.unmatchedPred).toEqual([]);
    expect(p.unmatchedRef).toEqual([]);
  });

  it("pairs the k-th occurrence of a duplicate with the k-th occurrence and reports the surplus", () => {
    const p = pairByIdentity(["x", "y", "x", "x"], ["x", "x", "y", "z"]);
    expect(p.pairs).toEqual([
      [0, 0],
      [1, 2],
      [2, 1],
    ]);
    expect(p.unmatchedPred).toEqual([3]);
    expect(p.unmatchedRef).toEqual([3]);
  });

  it("reports everything unmatched when nothing matches", () => {
    const p = pairByIdentity(["a"], ["b", "c"]);
    expect(p.pairs).toEqual([]);
    expect(p.unmatchedPred).toEqual([0]);
    expect(p.unmatchedRef).toEqual([0, 1]);
  });
});
