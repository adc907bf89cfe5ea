import { describe, expect, it } from "vitest";
import { atomsBySpecies, speciesInOrder, withAtomsInOrder, type Frame } from "../../src/core/structure.js";

describe("atomsBySpecies", () => {
  it("groups the atoms by species in the order given, each species' atoms in their order", () => {
    const symbols = ["O", "Zr", "Zr", "O", "H", "Zr"];
    expect(speciesInOrder(symbols)).toEqual(["O", "Zr", "H"]);
    expect(Array.from(atomsBySpecies(symbols, speciesInOrder(symbols))!)).toEqual([0, 3, 1, 2, 5, 4]);
    expect(Array.from(atomsBySpecies(symbols, ["H", "O", "Zr"])!)).toEqual([4, 0, 3, 1, 2, 5]);
    expect(atomsBySpecies(["Fe", "Fe", "S"], ["Fe", "S"])).toBeNull();
  });
});

describe("withAtomsInOrder", () => {
  it("moves positions, symbols and every per-atom column together", () => {
    const frame: Frame = {
      natoms: 3,
      symbols: ["O", "Zr", "O"],
      positions: Float64Array.of(0, 0, 0, 1, 1, 1, 2, 2, 2),
      cell: Float64Array.of(5, 0, 0, 0, 5, 0, 0, 0, 5),
      pbc: [true, true, true],
      info: new Map([["energy", { kind: "float", value: -1 }]]),
      arrays: new Map([
        ["forces", { dtype: "R", ncols: 3, data: Float64Array.of(0.1, 0, 0, 0.2, 0, 0, 0.3, 0, 0) }],
        ["move_mask", { dtype: "L", ncols: 1, data: Uint8Array.of(1, 0, 1) }],
        ["label", { dtype: "S", ncols: 1, data: ["a", "b", "c"] }],
      ]),
    };
    const moved = withAtomsInOrder(frame, [0, 2, 1]);
    expect(moved.symbols).toEqual(["O", "O", "Zr"]);
    expect(Array.from(moved.positions)).toEqual([0, 0, 0, 2, 2, 2, 1, 1, 1]);
    expect(Array.from(moved.arrays.get("forces")!.data as Float64Array)).toEqual([0.1, 0, 0, 0.3, 0, 0, 0.2, 0, 0]);
    expect(Array.from(moved.arrays.get("move_mask")!.data as Uint8Array)).toEqual([1, 1, 0]);
    expect(moved.arrays.get("label")!.data).toEqual(["a", "c", "b"]);
    expect(moved.info).toBe(frame.info);
    expect(Array.from(frame.positions)).toEqual([0, 0, 0, 1, 1, 1, 2, 2, 2]);
  });
});
