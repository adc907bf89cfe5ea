import { describe, expect, it } from "vitest";
import { kpointsAdvice, kpointsMesh, meshSpacing } from "../../../src/core/vasp/kpoints.js";

const cubic = (a: number) => new Float64Array([a, 0, 0, 0, a, 0, 0, 0, a]);
const periodic: [boolean, boolean, boolean] = [true, true, true];

describe("kpointsMesh", () => {
  it("reads Gamma and Monkhorst-Pack meshes, nothing else", () => {
    expect(kpointsMesh("Gamma\n0\nGamma\n4 4 2\n")).toEqual([4, 4, 2]);
    expect(kpointsMesh("k\r\n 0\r\nmonkhorst-pack\r\n 3 3 3 \r\n 0 0 0\r\n")).toEqual([3, 3, 3]);
    expect(kpointsMesh("Fully automatic\n0\nAuto\n25\n")).toBeNull();
    expect(kpointsMesh("Explicit\n2\nReciprocal\n0 0 0 1\n0.5 0 0 1\n")).toBeNull();
    expect(kpointsMesh("Gamma\n0\nGamma\n4 4\n")).toBeNull();
    expect(kpointsMesh("Gamma\n0\nGamma\n")).toBeNull();
  });
});

describe("meshSpacing", () => {
  it("is 2π|b_i|/n_i at its coarsest over the periodic axes", () => {
    expect(meshSpacing([4, 4, 4], cubic(5), periodic)).toBeCloseTo((2 * Math.PI) / 20, 12);
    // Hexagonal a = 3, c = 5: |b1| = |b2| = 2/(a√3), |b3| = 1/c.
    const hex = new Float64Array([3, 0, 0, -1.5, 1.5 * Math.sqrt(3), 0, 0, 0, 5]);
    expect(meshSpacing([6, 6, 1], hex, periodic)).toBeCloseTo((2 * Math.PI) / 5, 12);
    expect(meshSpacing([6, 6, 4], hex, periodic)).toBeCloseTo((2 * Math.PI * 2) / (3 * Math.sqrt(3) * 6), 12);
    // A slab: the vacuum axis (pbc F) does not count; no cell, no spacing.
    expect(meshSpacing([4, 4, 1], new Float64Array([4, 0, 0, 0, 4, 0, 0, 0, 1]), [true, true, false])).toBeCloseTo((2 * Math.PI) / 16, 12);
    expect(meshSpacing([1, 1, 1], new Float64Array(9), [false, false, false])).toBeNull();
  });
});

describe("kpointsAdvice", () => {
  const picks = [
    { rank: 1, cell: cubic(4), pbc: periodic, boxed: false },
    { rank: 2, cell: cubic(12), pbc: periodic, boxed: true },
    { rank: 3, cell: cubic(5.5), pbc: periodic, boxed: false },
  ];
  it("names boxed picks given more than the Gamma point and a spread of spacings over 1.5x", () => {
    expect(kpointsAdvice("m\n0\nGamma\n4 4 4\n", picks, "in/KPOINTS")).toEqual([
      "in/KPOINTS gives a 4x4x4 k-point mesh to the picks in a vacuum box (rank 2): a molecule needs the Gamma point only (1 1 1)",
    ]);
    const wide = [...picks, { rank: 4, cell: cubic(10), pbc: periodic, boxed: false }];
    expect(kpointsAdvice("m\n0\nGamma\n4 4 4\n", wide, "in/KPOINTS")[1]).toBe(
      "in/KPOINTS gives every pick a 4x4x4 mesh, so the k-point spacing runs from 0.16/A (rank 4) to 0.39/A (rank 1): for labels converged alike, set KSPACING in INCAR and leave KPOINTS out, or use a fully automatic KPOINTS",
    );
    expect(kpointsAdvice("m\n0\nGamma\n1 1 1\n", wide, "in/KPOINTS")).toHaveLength(1);
    expect(kpointsAdvice("m\n0\nAuto\n30\n", wide, "in/KPOINTS")).toEqual([]);
  });
});
