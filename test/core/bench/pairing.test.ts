import { describe, expect, it } from "vitest";
import { pairByIdentity, pairFrames } from "../../../src/core/bench/pairing.js";
import type { Geometry } from "../../../src/core/select/near-match.js";

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

describe("pairFrames", () => {
  const at = (x: number): Geometry => ({ natoms: 1, symbols: ["H"], positions: Float64Array.of(x, 0, 0), cell: new Float64Array(9), pbc: [false, false, false] });
  const frame = (id: string, x: number) => ({ id, geometry: at(x) });

  it("pairs by id first, then what is left by geometry within the tolerance, in prediction order", () => {
    // Predictions printed with fewer digits: b and c got other ids ("b8", "c8") than the references.
    const pred = [frame("c8", 3 + 4e-9), frame("a", 1), frame("b8", 2 - 3e-9), frame("z", 9)];
    const ref = [frame("a", 1), frame("b", 2), frame("c", 3), frame("y", 7)];
    const p = pairFrames(pred, ref);
    expect(p.pairs).toEqual([
      [0, 2],
      [1, 0],
      [2, 1],
    ]);
    expect(p.unmatchedPred).toEqual([3]);
    expect(p.unmatchedRef).toEqual([3]);
  });

  it("gives each reference to one prediction, the nearest first in file order", () => {
    const p = pairFrames([frame("p0", 5 + 2e-6), frame("p1", 5 + 1e-6), frame("p2", 5)], [frame("r0", 5), frame("r1", 5)]);
    expect(p.pairs).toEqual([
      [0, 0],
      [1, 1],
    ]);
    expect(p.unmatchedPred).toEqual([2]);
    expect(p.unmatchedRef).toEqual([]);
  });
});
