import { describe, expect, it } from "vitest";
import type { Frame, Pbc } from "../../../src/core/structure.js";
import { computeDescriptors } from "../../../src/core/select/descriptors.js";
import { countPairs, pairGeometry, type PairGeometry } from "../../../src/core/select/pair-histogram.js";
import { PairCountKernel, type KernelFrame } from "../../../src/core/select/pair-kernel.js";
import { seededRandom } from "./fps-oracle.js";

const SLACK = 1e-9;

/**
 * The pair enumeration as a plain scalar loop, with the floating-point operations in the order the
 * descriptors are specified with (image vector ((d + a*b0) + b*b1) + c*b2, d2 = (x*x + y*y) + z*z,
 * bin floor((sqrt(d2) * bins) / rMax)): the SIMD kernel must give exactly these counts, including
 * distances that round onto a bin edge.
 */
function scalarCounts(g: PairGeometry, rMax: number, bins: number, classes: Int32Array, classCount: number, blockOf: Int32Array): number[] {
  const blocks = Math.max(...blockOf) + 1;
  const counts = new Array<number>(blocks * bins).fill(0);
  const { n, positions: p, basis: B, heights, periodic } = g;
  const limit2 = rMax * rMax * (1 + SLACK);
  const s = [0, 1, 2].map((k) => (periodic[k] ? (rMax / heights[k]) * (1 + SLACK) : 0));
  const frac = (i: number, k: number): number => g.fractional[3 * i + k] * (periodic[k] ? 1 : 0);
  const add = (d2: number, block: number): void => {
    if (!(d2 <= limit2)) return;
    const d = Math.sqrt(d2);
    if (!(d > 1e-8 && d <= rMax)) return;
    counts[block * bins + Math.min(bins - 1, Math.floor((d * bins) / rMax))]++;
  };
  const reach = [0, 1, 2].map((k) => (periodic[k] ? Math.ceil(rMax / heights[k]) : 0));
  for (let i = 0; i < n; i++) {
    const block = blockOf[classes[i] * classCount + classes[i]];
    for (let a = 0; a <= reach[0]; a++) {
      for (let b = a === 0 ? 0 : -reach[1]; b <= reach[1]; b++) {
        for (let c = a === 0 && b === 0 ? 1 : -reach[2]; c <= reach[2]; c++) {
          const x = a * B[0] + b * B[3] + c * B[6], y = a * B[1] + b * B[4] + c * B[7], z = a * B[2] + b * B[5] + c * B[8];
          add(x * x + y * y + z * z, block);
        }
      }
    }
    for (let j = i + 1; j < n; j++) {
      const block2 = blockOf[classes[i] * classCount + classes[j]];
      const dx = p[3 * j] - p[3 * i], dy = p[3 * j + 1] - p[3 * i + 1], dz = p[3 * j + 2] - p[3 * i + 2];
      const f = [0, 1, 2].map((k) => frac(j, k) - frac(i, k));
      const lo = [0, 1, 2].map((k) => Math.ceil(-s[k] - f[k]));
      const hi = [0, 1, 2].map((k) => Math.floor(s[k] - f[k]));
      for (let a = lo[0]; a <= hi[0]; a++) {
        const ax = dx + a * B[0], ay = dy + a * B[1], az = dz + a * B[2];
        for (let b = lo[1]; b <= hi[1]; b++) {
          const bx = ax + b * B[3], by = ay + b * B[4], bz = az + b * B[5];
          for (let c = lo[2]; c <= hi[2]; c++) {
            const x = bx + c * B[6], y = by + c * B[7], z = bz + c * B[8];
            add(x * x + y * y + z * z, block2);
          }
        }
      }
    }
  }
  return counts;
}

function frame(symbols: string[], positions: number[], cell: number[], pbc: Pbc): Frame {
  return { natoms: symbols.length, symbols, positions: Float64Array.from(positions), cell: Float64Array.from(cell), pbc, info: new Map(), arrays: new Map() };
}

function randomFrame(random: () => number, n: number, cell: number[], pbc: Pbc, species: string[]): Frame {
  const positions: number[] = [];
  for (let i = 0; i < n; i++) {
    const u = [random() * 1.4 - 0.2, random() * 1.4 - 0.2, random() * 1.4 - 0.2];
    for (let k = 0; k < 3; k++) positions.push(u[0] * cell[k] + u[1] * cell[3 + k] + u[2] * cell[6 + k] + (pbc.some(Boolean) ? 0 : random() * 6));
  }
  return frame(Array.from({ length: n }, () => species[Math.floor(random() * species.length)]), positions, cell, pbc);
}

/** Per unordered species pair (element-pairs) or one block for all (baseline). */
function blocks(species: string[], perPair: boolean): Int32Array {
  const S = species.length;
  const blockOf = new Int32Array(S * S);
  let block = 0;
  for (let a = 0; a < S; a++) for (let b = a; b < S; b++) blockOf[a * S + b] = blockOf[b * S + a] = perPair ? block++ : 0;
  return blockOf;
}

function expectKernelMatchesScalar(f: Frame, species: string[], rMax = 6, bins = 80): void {
  const g = pairGeometry(f.positions, f.natoms, f.cell, f.pbc);
  const classes = Int32Array.from(f.symbols, (s) => species.indexOf(s));
  for (const perPair of [false, true]) {
    const blockOf = blocks(species, perPair);
    const expected = scalarCounts(g, rMax, bins, classes, species.length, blockOf);
    const counts = new Float64Array(expected.length);
    const total = countPairs(g, rMax, bins, classes, species.length, blockOf, counts, "pairs");
    expect(Array.from(counts)).toEqual(expected);
    expect(total).toBe(expected.reduce((sum, c) => sum + c, 0));
  }
}

describe("SIMD pair kernel", () => {
  it("equals the scalar enumeration on random triclinic cells, odd and even atom counts, three species", () => {
    const random = seededRandom(41);
    const species = ["Cu", "O", "Zr"];
    for (let t = 0; t < 40; t++) {
      const L = 3 + random() * 9;
      const cell = [L, random() - 0.5, random() - 0.5, random() * 2 - 1, L * (0.7 + random() * 0.6), random() - 0.5, random() - 0.5, random() - 0.5, L * (0.7 + random() * 0.6)];
      expectKernelMatchesScalar(randomFrame(random, 1 + (t % 13) * 3 + (t % 2), cell, [true, true, true], species), species);
    }
  });

  it("equals the scalar enumeration on slabs, wires and molecules", () => {
    const random = seededRandom(42);
    const species = ["H", "O"];
    expectKernelMatchesScalar(randomFrame(random, 31, [7.3, 0.1, 0, 2.2, 6.8, 0, 0, 0, 0], [true, true, false], species), species);
    expectKernelMatchesScalar(randomFrame(random, 17, [2.9, 0.4, 0.2, 0, 0, 0, 0, 0, 0], [true, false, false], species), species);
    expectKernelMatchesScalar(randomFrame(random, 24, [0, 0, 0, 0, 0, 0, 0, 0, 0], [false, false, false], species), species);
    expectKernelMatchesScalar(randomFrame(random, 12, [5.1, 0, 0, 0, 4.4, 0, 0, 0, 6.2], [false, true, true], species), species);
  });

  it("rounds distances that fall on bin edges exactly like the scalar loop (lattice spacing = 10 bin widths)", () => {
    // Simple cubic lattice, a = 0.75 A = 10 bins of 0.075 A: the distances a*sqrt(k) include many edges.
    const positions: number[] = [];
    const symbols: string[] = [];
    for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) for (let k = 0; k < 3; k++) {
      positions.push(0.75 * i, 0.75 * j, 0.75 * k);
      symbols.push((i + j + k) % 2 === 0 ? "Cu" : "Au");
    }
    const f = frame(symbols, positions, [2.25, 0, 0, 0, 2.25, 0, 0, 0, 2.25], [true, true, true]);
    expectKernelMatchesScalar(f, ["Au", "Cu"]);
    expectKernelMatchesScalar(f, ["Au", "Cu"], 3, 40);
  });

  it("counts a buffer that fills many times over (tiny cell, many images per pair)", () => {
    // Heights about 1.6 A against r_max 6: 8 shifts per direction, thousands of in-range images per atom.
    const random = seededRandom(43);
    const f = randomFrame(random, 40, [1.7, 0.1, 0, 0.2, 1.6, 0.1, 0, 0.3, 1.8], [true, true, true], ["Cu", "O"]);
    expectKernelMatchesScalar(f, ["Cu", "O"]);
  });

  it("gives the same counts when the rows are split over several kernel calls", () => {
    const random = seededRandom(44);
    const f = randomFrame(random, 33, [6.1, 0.3, 0, -0.8, 5.7, 0.2, 0.4, 0.1, 6.6], [true, true, true], ["Cu", "O", "Zr"]);
    const g = pairGeometry(f.positions, f.natoms, f.cell, f.pbc);
    const slab = [0, 1, 2].map((k) => (6 / g.heights[k]) * (1 + SLACK)) as [number, number, number];
    const input: KernelFrame = { basis: g.basis, slab, rMax: 6, limit2: 36 * (1 + SLACK), bins: 80, positions: g.positions, fractions: g.fractional, n: f.natoms };
    const classes = Int32Array.from(f.symbols, (s) => ["Cu", "O", "Zr"].indexOf(s));
    const blockOf = blocks(["Cu", "O", "Zr"], true);
    const whole = new Float64Array(6 * 80);
    const split = new Float64Array(6 * 80);
    const totalWhole = new PairCountKernel().count(input, classes, 3, blockOf, whole);
    // At least 8 images per pair and 33 atoms: at most 2 rows of i per call.
    const totalSplit = new PairCountKernel(600).count(input, classes, 3, blockOf, split);
    expect(totalWhole).toBeGreaterThan(0);
    expect(totalSplit).toBe(totalWhole);
    expect(Array.from(split)).toEqual(Array.from(whole));
  });
});

/** x moved by `steps` units in the last place (bit pattern steps; a perturbation, not a signed move). */
function ulps(x: number, steps: number): number {
  const value = Float64Array.of(x);
  new BigInt64Array(value.buffer)[0] += BigInt(steps);
  return value[0];
}

/** Bins of every image of the pairs (i < j) of a geometry under a given image-vector and bin rule. */
function imageBins(
  g: PairGeometry,
  rMax: number,
  bins: number,
  image: (d: number[], a: number, b: number, c: number, B: Float64Array) => number[],
  binOf: (x: number, y: number, z: number) => number,
): number[] {
  const out: number[] = [];
  const { positions: p, basis } = g;
  const reach = [0, 1, 2].map((k) => (g.periodic[k] ? Math.ceil(rMax / g.heights[k]) : 0));
  for (let i = 0; i < g.n; i++) for (let j = i + 1; j < g.n; j++) {
    const d = [0, 1, 2].map((k) => p[3 * j + k] - p[3 * i + k]);
    for (let a = -reach[0]; a <= reach[0]; a++) for (let b = -reach[1]; b <= reach[1]; b++) for (let c = -reach[2]; c <= reach[2]; c++) {
      const [x, y, z] = image(d, a, b, c, basis);
      out.push(binOf(x, y, z));
    }
  }
  return out;
}

const specifiedImage = (d: number[], a: number, b: number, c: number, B: Float64Array): number[] =>
  [0, 1, 2].map((k) => d[k] + a * B[k] + b * B[3 + k] + c * B[6 + k]);
const specifiedBin = (rMax: number, bins: number) => (x: number, y: number, z: number): number => {
  const d = Math.sqrt(x * x + y * y + z * z);
  return d > 1e-8 && d <= rMax ? Math.min(bins - 1, Math.floor((d * bins) / rMax)) : -1;
};

/**
 * A two-atom frame near a bin edge where `alternative` (image rule, bin rule) puts some image in
 * another bin than the specified arithmetic: found by moving the second atom a few ulps at a time.
 */
function frameWhereRoundingMatters(
  cell: number[],
  pbc: Pbc,
  shift: number[],
  alternative: { image?: typeof specifiedImage; bin?: (x: number, y: number, z: number) => number },
): Frame {
  const rMax = 6, bins = 80;
  const random = seededRandom(46);
  for (let attempt = 0; attempt < 400; attempt++) {
    const edge = (Math.floor(10 + random() * 60) * rMax) / bins;
    const u = [random() - 0.5, random() - 0.5, random() - 0.5];
    const norm = Math.hypot(u[0], u[1], u[2]);
    // Atom 2 at (point on the edge sphere) - (lattice vector `shift`): that image sits on the edge.
    const lattice = [0, 1, 2].map((k) => shift[0] * cell[k] + shift[1] * cell[3 + k] + shift[2] * cell[6 + k]);
    const base = [0, 1, 2].map((k) => 0.5 + (edge * u[k]) / norm - lattice[k]);
    for (let step = -40; step <= 40; step++) {
      const f = frame(["Cu", "Cu"], [0.5, 0.5, 0.5, base[0], base[1], ulps(base[2], step)], cell, pbc);
      const g = pairGeometry(f.positions, 2, f.cell, f.pbc);
      const specified = imageBins(g, rMax, bins, specifiedImage, specifiedBin(rMax, bins));
      const other = imageBins(g, rMax, bins, alternative.image ?? specifiedImage, alternative.bin ?? specifiedBin(rMax, bins));
      if (specified.some((bin, k) => bin !== other[k])) return f;
    }
  }
  throw new Error("no frame found where the alternative rounding changes a bin");
}

describe("SIMD pair kernel rounding", () => {
  const molecule = [0, 0, 0, 0, 0, 0, 0, 0, 0];
  const triclinic = [7.31, 0.23, -0.17, -1.13, 7.62, 0.31, 0.41, -0.29, 7.94];

  it("sums d2 as (x*x + y*y) + z*z", () => {
    const f = frameWhereRoundingMatters(molecule, [false, false, false], [0, 0, 0], {
      bin: (x, y, z) => binOfDistance(Math.sqrt(x * x + (y * y + z * z))),
    });
    expectKernelMatchesScalar(f, ["Cu"]);
  });

  it("bins with floor((d * bins) / r_max), not d times a precomputed bins / r_max", () => {
    const f = frameWhereRoundingMatters(molecule, [false, false, false], [0, 0, 0], {
      bin: (x, y, z) => binOfDistance(Math.sqrt(x * x + y * y + z * z), (d) => Math.floor(d * (80 / 6))),
    });
    expectKernelMatchesScalar(f, ["Cu"]);
  });

  it("adds the image shifts one lattice vector at a time, not as a precomputed shift vector", () => {
    const f = frameWhereRoundingMatters(triclinic, [true, true, true], [1, -1, 1], {
      image: (d, a, b, c, B) => [0, 1, 2].map((k) => d[k] + (a * B[k] + b * B[3 + k] + c * B[6 + k])),
    });
    expectKernelMatchesScalar(f, ["Cu"]);
  });
});

/** Bin of a distance for r_max 6 and 80 bins, -1 outside (1e-8, 6]; `floorBin` overrides the bin rule. */
function binOfDistance(d: number, floorBin = (x: number): number => Math.floor((x * 80) / 6)): number {
  return d > 1e-8 && d <= 6 ? Math.min(79, floorBin(d)) : -1;
}

describe("descriptors over a batch", () => {
  it("equal the descriptors of each frame alone (no state carried from one frame to the next)", () => {
    const random = seededRandom(45);
    const species = ["Cu", "O", "Zr"];
    const frames: Frame[] = [];
    for (let t = 0; t < 12; t++) {
      const L = 4 + random() * 6;
      const pbc: Pbc = t % 4 === 3 ? [true, true, false] : [true, true, true];
      const cell = [L, 0.2, 0, -0.4, L * 1.1, 0.1, 0.3, 0, pbc[2] ? L * 0.9 : 0];
      frames.push(randomFrame(random, [5, 64, 2, 31][t % 4], cell, pbc, species.slice(0, 1 + (t % 3))));
    }
    for (const kind of ["baseline", "element-pairs"] as const) {
      const batch = computeDescriptors(frames, { kind, species });
      // Alone in reverse order: each frame then follows a different frame than in the batch.
      for (let r = frames.length - 1; r >= 0; r--) {
        const alone = computeDescriptors([frames[r]], { kind, species });
        expect(Array.from(batch.data.subarray(r * batch.cols, (r + 1) * batch.cols))).toEqual(Array.from(alone.data));
      }
    }
  });
});
