import { describe, expect, it } from "vitest";
import { maxForceNorm, missingLabels, reducedFormula, robustOutliers } from "../../../src/core/dataset/gates.js";
import type { Frame } from "../../../src/core/structure.js";

function frame(info: Frame["info"], forces: number[] | null): Frame {
  const natoms = 2;
  return {
    natoms,
    symbols: ["H", "H"],
    positions: new Float64Array(6),
    cell: new Float64Array(9),
    pbc: [false, false, false],
    info,
    arrays: forces ? new Map([["REF_forces", { dtype: "R" as const, ncols: 3, data: Float64Array.from(forces) }]]) : new Map(),
  };
}

describe("maxForceNorm", () => {
  it("is the largest per-atom norm", () => {
    expect(maxForceNorm(new Float64Array([3, 4, 0, 1, 0, 0]))).toBe(5);
    expect(maxForceNorm(new Float64Array([1, 2, 2, 0, 0, -0.5]))).toBe(3);
  });
});

describe("missingLabels", () => {
  const info = (energy: number | null, stress?: number[]): Frame["info"] => {
    const m: Frame["info"] = new Map();
    if (energy !== null) m.set("REF_energy", { kind: "float", value: energy });
    if (stress) m.set("REF_stress", { kind: "array", dtype: "float", shape: [6], data: stress });
    return m;
  };

  it("accepts a complete frame and one without stress", () => {
    expect(missingLabels(frame(info(-1, [0, 0, 0, 0, 0, 0]), [0, 0, 0, 0, 0, 0]))).toEqual([]);
    expect(missingLabels(frame(info(-1), [0, 0, 0, 0, 0, 0]))).toEqual([]);
  });

  it("names absent or non-finite energy, forces and stress", () => {
    expect(missingLabels(frame(info(null), [0, 0, 0, 0, 0, 0]))).toEqual(["REF_energy"]);
    expect(missingLabels(frame(info(NaN), null))).toEqual(["REF_energy", "REF_forces"]);
    expect(missingLabels(frame(info(-1), [0, 0, 0, 0, Infinity, 0]))).toEqual(["REF_forces"]);
    expect(missingLabels(frame(info(-1), [0, 0, 0]))).toEqual(["REF_forces"]);
    expect(missingLabels(frame(info(-1, [0, 0, NaN, 0, 0, 0]), [0, 0, 0, 0, 0, 0]))).toEqual(["REF_stress"]);
  });
});

describe("reducedFormula", () => {
  it("divides by the common factor and writes Hill order", () => {
    expect(reducedFormula(["H", "O", "H", "H", "O", "H"])).toBe("H2O");
    expect(reducedFormula(["H", "C", "H", "H", "H", "C", "H", "H", "H", "H"])).toBe("CH4");
    expect(reducedFormula(["Ti", "O", "O", "Ti"])).toBe("OTi");
    expect(reducedFormula(["Fe", "Fe", "O", "O", "O"])).toBe("Fe2O3");
    expect(reducedFormula(["Si", "Si"])).toBe("Si");
  });
});

describe("robustOutliers", () => {
  it("scores with the median and the MAD", () => {
    // median 3; |x - 3| = 2 1 0 1 97 -> MAD 1; z(100) = 0.6745 * 97 = 65.43; z(1) = -1.349
    const got = robustOutliers(Float64Array.from([1, 2, 3, 4, 100]), 5)!;
    expect(got.median).toBe(3);
    expect(got.mad).toBe(1);
    expect(got.outliers).toHaveLength(1);
    expect(got.outliers[0].index).toBe(4);
    expect(got.outliers[0].z).toBeCloseTo(65.4265, 4);
    expect(robustOutliers(Float64Array.from([1, 2, 3, 4, 100]), 70)!.outliers).toEqual([]);
  });

  it("judges nothing with fewer than 3 values or without spread", () => {
    expect(robustOutliers(Float64Array.from([1, 50]), 5)).toBeNull();
    expect(robustOutliers(Float64Array.from([2, 2, 2, 9]), 5)).toBeNull();
  });

  it("divides by at least the MAD floor, so a tight cluster does not make a small offset extreme", () => {
    // median -4.8254, MAD 0.0001: an offset of 0.036 scores z = 243 alone, 2.4 with a floor of 0.01.
    const values = Float64Array.from([-4.8255, -4.8254, -4.8253, -4.8254, -4.7894]);
    expect(robustOutliers(values, 5)!.outliers.map((o) => o.index)).toEqual([4]);
    const floored = robustOutliers(values, 5, 0.01)!;
    expect(floored.mad).toBe(0.01);
    expect(floored.outliers).toEqual([]);
    // A floor also lets equal values be judged.
    expect(robustOutliers(Float64Array.from([2, 2, 2, 9]), 5, 0.01)!.outliers.map((o) => o.index)).toEqual([3]);
  });
});
