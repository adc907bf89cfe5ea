import { describe, expect, it } from "vitest";
import { InputError } from "../../../src/core/errors.js";
import type { Frame, Pbc } from "../../../src/core/structure.js";
import { computeDescriptors, descriptorColumns, descriptorSpecies, placeDescriptorRows } from "../../../src/core/select/descriptors.js";
import { scatteredRows } from "./placed-rows.js";
import { createFeatureMatrix } from "../../../src/core/select/feature-matrix.js";
import { countPairs, pairGeometry, type PairMethod } from "../../../src/core/select/pair-histogram.js";
import { seededRandom } from "./fps-oracle.js";

function frame(symbols: string[], positions: number[], cell: number[], pbc: Pbc): Frame {
  return {
    natoms: symbols.length,
    symbols,
    positions: Float64Array.from(positions),
    cell: Float64Array.from(cell),
    pbc,
    info: new Map(),
    arrays: new Map(),
  };
}

/** Spacing of the lattice planes (lines, points) of vector k within the periodic directions only. */
function planeHeight(cell: Float64Array, pbc: Pbc, k: number): number {
  const v = (i: number): number[] => [cell[3 * i], cell[3 * i + 1], cell[3 * i + 2]];
  const cross = (a: number[], b: number[]): number[] => [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]];
  const norm = (a: number[]): number => Math.hypot(a[0], a[1], a[2]);
  const others = [0, 1, 2].filter((i) => i !== k && pbc[i]).map(v);
  if (others.length === 0) return norm(v(k));
  if (others.length === 1) return norm(cross(v(k), others[0])) / norm(others[0]);
  const n = cross(others[0], others[1]);
  const c = v(k);
  return Math.abs(n[0] * c[0] + n[1] * c[1] + n[2] * c[2]) / norm(n);
}

/**
 * Brute force over a generous box of image shifts: i < j with every shift, an atom with its own
 * images for lexicographically positive shifts only; unwrapped positions.
 */
function bruteForceCounts(f: Frame, rMax: number, bins: number, blockOf: (a: string, b: string) => number, blocks: number): number[] {
  const counts = new Array<number>(blocks * bins).fill(0);
  let extent = 0;
  for (const x of f.positions) extent = Math.max(extent, Math.abs(x));
  const R = [0, 1, 2].map((k) => (f.pbc[k] ? Math.ceil((rMax + 4 * extent) / planeHeight(f.cell, f.pbc, k)) + 1 : 0));
  const P = f.positions, C = f.cell;
  for (let i = 0; i < f.natoms; i++) {
    for (let j = i; j < f.natoms; j++) {
      for (let a = -R[0]; a <= R[0]; a++) {
        for (let b = -R[1]; b <= R[1]; b++) {
          for (let c = -R[2]; c <= R[2]; c++) {
            if (i === j && !(a > 0 || (a === 0 && (b > 0 || (b === 0 && c > 0))))) continue;
            const x = P[3 * j] + a * C[0] + b * C[3] + c * C[6] - P[3 * i];
            const y = P[3 * j + 1] + a * C[1] + b * C[4] + c * C[7] - P[3 * i + 1];
            const z = P[3 * j + 2] + a * C[2] + b * C[5] + c * C[8] - P[3 * i + 2];
            const d = Math.hypot(x, y, z);
            if (d > 1e-8 && d <= rMax) counts[blockOf(f.symbols[i], f.symbols[j]) * bins + Math.min(bins - 1, Math.floor((d * bins) / rMax))]++;
          }
        }
      }
    }
  }
  return counts;
}

function countsBy(method: PairMethod, f: Frame, rMax: number, bins: number, species: string[], perPair: boolean): number[] {
  const S = species.length;
  const blockOf = new Int32Array(S * S);
  let block = 0;
  for (let a = 0; a < S; a++) for (let b = a; b < S; b++) blockOf[a * S + b] = blockOf[b * S + a] = perPair ? block++ : 0;
  const counts = new Float64Array((perPair ? (S * (S + 1)) / 2 : 1) * bins);
  const classes = Int32Array.from(f.symbols, (s) => species.indexOf(s));
  countPairs(pairGeometry(f.positions, f.natoms, f.cell, f.pbc), rMax, bins, classes, S, blockOf, counts, method);
  return Array.from(counts);
}

function randomFrame(random: () => number, n: number, cell: number[], pbc: Pbc, species = ["Cu", "O"]): Frame {
  const positions: number[] = [];
  for (let i = 0; i < n; i++) {
    const u = [random() * 1.6 - 0.3, random() * 1.6 - 0.3, random() * 1.6 - 0.3];
    for (let k = 0; k < 3; k++) {
      positions.push(u[0] * cell[k] + u[1] * cell[3 + k] + u[2] * cell[6 + k] + (pbc[0] || pbc[1] || pbc[2] ? 0 : random() * 8));
    }
  }
  return frame(Array.from({ length: n }, () => species[Math.floor(random() * species.length)]), positions, cell, pbc);
}

function expectBothMethodsMatch(f: Frame, rMax = 6, bins = 40): void {
  const species = descriptorSpecies([f]);
  const pairIndex = (a: string, b: string): number => {
    const [x, y] = [species.indexOf(a), species.indexOf(b)].sort((p, q) => p - q);
    let block = 0;
    for (let p = 0; p < species.length; p++) for (let q = p; q < species.length; q++, block++) if (p === x && q === y) return block;
    throw new Error("unreachable");
  };
  const S = species.length;
  const expectedAll = bruteForceCounts(f, rMax, bins, () => 0, 1);
  const expectedPerPair = bruteForceCounts(f, rMax, bins, pairIndex, (S * (S + 1)) / 2);
  expect(expectedAll.some((c) => c > 0)).toBe(true);
  for (const method of ["pairs", "cells"] as const) {
    expect(countsBy(method, f, rMax, bins, species, false)).toEqual(expectedAll);
    expect(countsBy(method, f, rMax, bins, species, true)).toEqual(expectedPerPair);
  }
}

describe("pair counts with periodic images", () => {
  it("match brute force on tiny and strongly skewed triclinic cells", () => {
    const random = seededRandom(31);
    const cells = [
      [2.13, 0, 0, 0.71, 2.47, 0, 0.37, -0.52, 1.93],
      [3.07, 0.11, -0.2, 2.61, 1.32, 0.08, 1.9, 1.23, 2.51],
      [1.17, 0, 0, 0, 1.29, 0, 0, 0, 7.41],
      [4.2, 0.3, 0.1, -3.7, 2.2, 0.4, 0.6, -0.5, 3.3],
    ];
    for (const cell of cells) for (const n of [1, 2, 5]) expectBothMethodsMatch(randomFrame(random, n, cell, [true, true, true]));
  });

  it("match brute force for a larger cell, a slab, a wire and a molecule", () => {
    const random = seededRandom(32);
    expectBothMethodsMatch(randomFrame(random, 150, [13.1, 0.2, 0, -1.1, 12.7, 0.3, 0.4, 0.6, 14.2], [true, true, true]));
    expectBothMethodsMatch(randomFrame(random, 40, [7.3, 0.1, 0, 2.2, 6.8, 0, 0, 0, 0], [true, true, false]));
    expectBothMethodsMatch(randomFrame(random, 30, [5.4, 0.3, 0, 0.2, 5.1, 0, 0.1, 0.2, 16.3], [true, true, false]));
    expectBothMethodsMatch(randomFrame(random, 12, [2.9, 0.4, 0.2, 0, 0, 0, 0, 0, 0], [true, false, false]));
    expectBothMethodsMatch(randomFrame(random, 25, [0, 0, 0, 0, 0, 0, 0, 0, 0], [false, false, false]));
    expectBothMethodsMatch(randomFrame(random, 20, [3.1, 0, 0, 0, 3.3, 0, 0, 0, 3.2], [false, false, false]));
  });
});

describe("baseline descriptor", () => {
  it("gives a one-atom simple cubic cell its neighbour shells (hand count)", () => {
    // a = 4: 6 neighbours at 4 and 12 at 4*sqrt(2) within 6 A; each counted once per cell: 3 and 6 pairs.
    const m = computeDescriptors([frame(["Cu"], [0.5, 0.5, 0.5], [4, 0, 0, 0, 4, 0, 0, 0, 4], [true, true, true])], {
      kind: "baseline",
      species: ["Cu"],
    });
    expect(m.cols).toBe(1 + 1 + 80);
    expect(m.data[0]).toBe(1);
    expect(m.data[1]).toBe(64);
    const h = Array.from(m.data.subarray(2));
    const dr = 6 / 80;
    expect(h[53]).toBeCloseTo(3 / (9 * dr), 5); // 4 / 0.075 = 53.3
    expect(h[75]).toBeCloseTo(6 / (9 * dr), 5); // 5.657 / 0.075 = 75.4
    expect(h.filter((v) => v !== 0)).toHaveLength(2);
    expect(h.reduce((s, v) => s + v, 0) * dr).toBeCloseTo(1, 6);
  });

  it("describes a molecule without images, volume 0, and an isolated atom with a zero histogram", () => {
    const n2 = frame(["N", "N"], [0, 0, 0, 1.1, 0, 0], [10, 0, 0, 0, 10, 0, 0, 0, 10], [false, false, false]);
    const atom = frame(["N"], [0, 0, 0], [0, 0, 0, 0, 0, 0, 0, 0, 0], [false, false, false]);
    const m = computeDescriptors([n2, atom], { kind: "baseline", species: ["N"] });
    const row = (r: number): number[] => Array.from(m.data.subarray(r * m.cols, (r + 1) * m.cols));
    expect(row(0)[1]).toBe(0);
    expect(row(0)[2 + 14]).toBeCloseTo(1 / (6 / 80), 5); // 1.1 A -> bin 14, the only pair
    expect(row(1)).toEqual([1, 0, ...new Array(80).fill(0)]);
  });

  it("uses |det cell| / N for periodic frames with a left-handed cell, and composition fractions", () => {
    const f = frame(["O", "Cu", "Cu", "Cu"], [0, 0, 0, 1, 1, 1, 2, 0, 1, 0, 2, 2], [0, 5, 0, 5, 0, 0, 0, 0, 6], [true, true, true]);
    const m = computeDescriptors([f], { kind: "baseline", species: ["Cu", "O"] });
    expect(Array.from(m.data.subarray(0, 3))).toEqual([0.75, 0.25, 37.5]);
  });

  it("splits the histogram by species pair in element-pairs, blocks adding up to the baseline", () => {
    const random = seededRandom(33);
    const f = randomFrame(random, 9, [4.1, 0.2, 0, 0.3, 3.9, 0.1, 0, 0.4, 4.4], [true, true, true], ["Cu", "O", "Zr"]);
    const species = ["Cu", "O", "Zr"];
    const base = computeDescriptors([f], { kind: "baseline", species });
    const pairs = computeDescriptors([f], { kind: "element-pairs", species });
    expect(pairs.cols).toBe(3 + 1 + 6 * 80);
    expect(pairs.columns?.slice(4, 5)).toEqual(["rdf_Cu-Cu_0"]);
    expect(pairs.columns?.[4 + 80]).toBe("rdf_Cu-O_0");
    expect(Array.from(pairs.data.subarray(0, 4))).toEqual(Array.from(base.data.subarray(0, 4)));
    for (let b = 0; b < 80; b++) {
      let sum = 0;
      for (let block = 0; block < 6; block++) sum += pairs.data[4 + block * 80 + b];
      expect(sum).toBeCloseTo(base.data[4 + b], 4);
    }
  });

  it("places rows computed for a frame's own species into the columns of more species, bit for bit", () => {
    const random = seededRandom(34);
    const cell = [4.3, 0.1, 0, 0.2, 4.0, 0.3, 0, 0.1, 4.6];
    const groups = [["O", "Zr"], ["Cu"], ["Cu", "Zr"], ["O", "Zr"]].map((own) => ({ own, frames: [0, 1, 2].map(() => randomFrame(random, 7, cell, [true, true, true], own)) }));
    const species = ["Cu", "H", "O", "Zr"];
    for (const kind of ["baseline", "element-pairs"] as const) {
      const options = { kind, species, bins: 12, rMax: 5 };
      const all = groups.flatMap((g) => g.frames);
      const want = computeDescriptors(all, options);
      const into = createFeatureMatrix(all.length, want.cols);
      into.data.fill(7); // stale values must not survive in the absent species' columns
      let row = 0;
      for (const { own, frames } of groups) {
        const local = descriptorSpecies(frames);
        expect(local).toEqual([...own].sort());
        placeDescriptorRows({ species: local, ...computeDescriptors(frames, { ...options, species: local }) }, into, row, options);
        row += frames.length;
      }
      expect(Buffer.from(into.data.buffer).equals(Buffer.from(want.data.buffer))).toBe(true);
      // The same into rows placed elsewhere (the selection's memory).
      const placed = scatteredRows(all.length, want.cols);
      placed.data.fill(7);
      row = 0;
      for (const { frames } of groups) {
        const local = descriptorSpecies(frames);
        placeDescriptorRows({ species: local, ...computeDescriptors(frames, { ...options, species: local }) }, placed, row, options);
        row += frames.length;
      }
      for (let r = 0; r < all.length; r++) {
        const at = placed.start(r);
        expect(Buffer.from(placed.data.slice(at, at + want.cols).buffer).equals(Buffer.from(want.data.slice(r * want.cols, (r + 1) * want.cols).buffer))).toBe(true);
      }
    }
    const rows = { species: ["Xe"], ...computeDescriptors([frame(["Xe"], [0, 0, 0], cell, [true, true, true])], { kind: "baseline", species: ["Xe"] }) };
    expect(() => placeDescriptorRows(rows, createFeatureMatrix(1, 2 + 80), 0, { kind: "baseline", species: ["Cu"] })).toThrow(/species Xe is not among Cu/);
  });

  it("names its columns and sorts species", () => {
    expect(descriptorSpecies([{ symbols: ["O", "H", "Zr"] }, { symbols: ["C", "H"] }])).toEqual(["C", "H", "O", "Zr"]);
    expect(descriptorColumns({ kind: "baseline", species: ["H", "O"], bins: 2 })).toEqual([
      "x_H", "x_O", "volume_per_atom", "rdf_0", "rdf_1",
    ]);
  });
});

describe("descriptor input errors", () => {
  const cubic = [4, 0, 0, 0, 4, 0, 0, 0, 4];
  const origin = [{ file: "pool.xyz", where: 12 }];
  const errorOf = (f: Frame, species = ["Cu"]): unknown => {
    try {
      computeDescriptors([f], { kind: "baseline", species }, origin);
    } catch (error) {
      return error;
    }
    return undefined;
  };

  it("names the file and line of a frame with an unknown species", () => {
    const error = errorOf(frame(["Au"], [0, 0, 0], cubic, [true, true, true]));
    expect(error).toBeInstanceOf(InputError);
    expect(String((error as Error).message)).toBe("pool.xyz:12: species Au is not among the descriptor species (Cu)");
  });

  it("rejects periodic frames without a usable cell, empty frames and non-finite positions", () => {
    expect(String(errorOf(frame(["Cu"], [0, 0, 0], new Array(9).fill(0), [true, true, true])))).toMatch(/pbc is true along cell vector 1 but that vector is zero/);
    expect(String(errorOf(frame(["Cu"], [0, 0, 0], [1, 0, 0, 2, 0, 0, 0, 0, 3], [true, true, true])))).toMatch(/singular/);
    expect(String(errorOf(frame([], [], cubic, [true, true, true])))).toMatch(/no atoms/);
    expect(String(errorOf(frame(["Cu"], [0, NaN, 0], cubic, [true, true, true])))).toMatch(/atom 0: position is not a finite number/);
    expect(String(errorOf(frame(["Cu"], [0, 0, 0], [0.01, 0, 0, 0, 0.01, 0, 0, 0, 0.01], [true, true, true])))).toMatch(/too small/);
  });
});
