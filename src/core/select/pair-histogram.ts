/**
 * Pair-distance counts of one structure, with every periodic image along its periodic directions.
 *
 * Counting: each unordered pair of atoms in space is counted once per cell. For atoms i != j that is
 * every image j + T within range; for an atom and its own images, T and -T are the same pair, so each
 * is counted once (half of the ordered count). Equivalently: half the ordered count over all (i, j, T)
 * except (i, i, 0). A pair enters when 1e-8 < d <= r_max, in bin floor(d * bins / r_max) (d = r_max
 * goes to the last bin). For a cell wider than 2*r_max this is the minimum-image count over i < j.
 *
 * Two enumerations, chosen by estimated cost, give the same counts (up to distances that fall within
 * rounding of a bin edge or of r_max, where the order of the floating-point sums decides):
 * - pairs: for every i < j, the image shifts whose slab along each reciprocal direction can reach
 *   r_max (n in [ceil(-f - r/h), floor(-f + r/h)], f the fractional offset, h the cell height), in
 *   WebAssembly (pair-kernel.ts); an atom's own images are the same lattice vectors for every atom,
 *   counted once and added per atom. Best for small cells (cost ~ atoms^2 * images).
 * - cells: atoms binned on a grid of bins at least r_max/2 high along each reciprocal direction; each
 *   bin meets the bins (and their images) within reach, half of the offsets only; O(atoms).
 * Non-periodic directions are never wrapped or shifted; they are binned over the atoms' extent.
 */

import { PairCountKernel } from "./pair-kernel.js";

export interface PairGeometry {
  n: number;
  /** Positions moved into the cell along periodic directions (Cartesian, length 3n). */
  positions: Float64Array;
  /** Fractional coordinates in `basis` (length 3n); along non-periodic directions, Angstrom along a unit vector. */
  fractional: Float64Array;
  /** Rows b0, b1, b2: the cell vectors along periodic directions, orthonormal completions elsewhere. */
  basis: Float64Array;
  /** Distances between lattice planes, 1/|reciprocal vector| (1 along non-periodic directions). */
  heights: [number, number, number];
  periodic: [boolean, boolean, boolean];
}

export type PairMethod = "pairs" | "cells";

/** Reasons a periodic frame cannot be handled; the caller names the frame. */
export class GeometryError extends Error {}

const RANGE_SLACK = 1e-9;
/** Refuse cells so small that r_max reaches more images than this per atom. */
const MAX_IMAGES_PER_ATOM = 2_000_000;

/** Prepares the geometry: completes the basis, wraps positions, computes plane heights. */
export function pairGeometry(
  positions: Float64Array,
  n: number,
  cell: Float64Array,
  pbc: readonly [boolean, boolean, boolean],
): PairGeometry {
  const periodic: [boolean, boolean, boolean] = [pbc[0], pbc[1], pbc[2]];
  const basis = completedBasis(cell, periodic);
  const inverse = invert3(basis);
  const heights: [number, number, number] = [0, 0, 0];
  for (let k = 0; k < 3; k++) {
    // Reciprocal vector k is column k of the inverse.
    const gx = inverse[k], gy = inverse[3 + k], gz = inverse[6 + k];
    heights[k] = 1 / Math.sqrt(gx * gx + gy * gy + gz * gz);
  }
  const wrapped = new Float64Array(3 * n);
  const fractional = new Float64Array(3 * n);
  for (let i = 0; i < n; i++) {
    const x = positions[3 * i], y = positions[3 * i + 1], z = positions[3 * i + 2];
    let wx = x, wy = y, wz = z;
    for (let k = 0; k < 3; k++) {
      let u = x * inverse[k] + y * inverse[3 + k] + z * inverse[6 + k];
      if (periodic[k]) {
        const shift = Math.floor(u);
        u -= shift;
        if (u >= 1) u = 0;
        wx -= shift * basis[3 * k];
        wy -= shift * basis[3 * k + 1];
        wz -= shift * basis[3 * k + 2];
      }
      fractional[3 * i + k] = u;
    }
    wrapped[3 * i] = wx;
    wrapped[3 * i + 1] = wy;
    wrapped[3 * i + 2] = wz;
  }
  return { n, positions: wrapped, fractional, basis, heights, periodic };
}

/**
 * Adds the pair counts to `counts[block(class_i, class_j) * bins + bin]`; returns the number of pairs.
 * `blockOf[a * classCount + b]` gives the block of an unordered class pair (symmetric).
 */
export function countPairs(
  geometry: PairGeometry,
  rMax: number,
  bins: number,
  atomClass: Int32Array,
  classCount: number,
  blockOf: Int32Array,
  counts: Float64Array,
  method?: PairMethod,
): number {
  const reach = imageReach(geometry, rMax);
  let images = 1;
  for (let k = 0; k < 3; k++) images *= 2 * reach[k] + 1;
  if (images > MAX_IMAGES_PER_ATOM) {
    throw new GeometryError(`the cell is too small for r_max = ${rMax} A (${images} periodic images within reach)`);
  }
  const chosen = method ?? cheaperMethod(geometry, rMax);
  const context = { geometry, rMax, bins, atomClass, classCount, blockOf, counts };
  return chosen === "pairs" ? countByPairs(context, reach) : countByCells(context);
}

interface CountContext {
  geometry: PairGeometry;
  rMax: number;
  bins: number;
  atomClass: Int32Array;
  classCount: number;
  blockOf: Int32Array;
  counts: Float64Array;
}

/** Images reachable along each direction: ceil(r_max / height) periodic, 0 otherwise. */
function imageReach(geometry: PairGeometry, rMax: number): [number, number, number] {
  const reach: [number, number, number] = [0, 0, 0];
  for (let k = 0; k < 3; k++) if (geometry.periodic[k]) reach[k] = Math.ceil(rMax / geometry.heights[k]);
  return reach;
}

/** Below this many atoms, all pairs is always cheap enough (and skips building a grid). */
const PAIRS_UP_TO_ATOMS = 96;

function cheaperMethod(geometry: PairGeometry, rMax: number): PairMethod {
  const n = geometry.n;
  if (n <= PAIRS_UP_TO_ATOMS) return "pairs";
  let imagesPerPair = 1;
  for (let k = 0; k < 3; k++) if (geometry.periodic[k]) imagesPerPair *= (2 * rMax) / geometry.heights[k];
  const pairsCost = ((n * (n + 1)) / 2) * (1 + imagesPerPair);
  const grid = cellGrid(geometry, rMax);
  const binCount = grid.counts[0] * grid.counts[1] * grid.counts[2];
  const perBin = n / binCount;
  const cellsCost = binCount * grid.offsets.length * (1 + perBin * perBin) + n;
  return pairsCost <= cellsCost ? "pairs" : "cells";
}

/** Adds one pair at squared distance d2 (already known to be within reach). */
function record(context: CountContext, d2: number, block: number): number {
  const d = Math.sqrt(d2);
  if (!(d > 1e-8 && d <= context.rMax)) return 0;
  let bin = Math.floor((d * context.bins) / context.rMax);
  if (bin >= context.bins) bin = context.bins - 1;
  context.counts[block * context.bins + bin] += 1;
  return 1;
}

let pairKernel: PairCountKernel | undefined;

function countByPairs(context: CountContext, reach: [number, number, number]): number {
  const { geometry, rMax, bins, atomClass, classCount, blockOf, counts } = context;
  const { n, positions, fractional, basis, heights, periodic } = geometry;
  const limit2 = rMax * rMax * (1 + RANGE_SLACK);
  // Slab half-widths in fractional units; 0 with zeroed fractions pins non-periodic shifts to 0.
  const [s0, s1, s2] = [0, 1, 2].map((k) => (periodic[k] ? (rMax / heights[k]) * (1 + RANGE_SLACK) : 0));
  const mask = periodic.map((p) => (p ? 1 : 0));
  const b0x = basis[0], b0y = basis[1], b0z = basis[2];
  const b1x = basis[3], b1y = basis[4], b1z = basis[5];
  const b2x = basis[6], b2y = basis[7], b2z = basis[8];
  let total = 0;
  // An atom and its own images: T and -T are one pair, so only lexicographically positive T. The same
  // lattice vectors for every atom: count them once, then once per atom of each species.
  const selfBins: number[] = [];
  const [r0, r1, r2] = reach;
  for (let a = 0; a <= r0; a++) {
    for (let b = a === 0 ? 0 : -r1; b <= r1; b++) {
      for (let c = a === 0 && b === 0 ? 1 : -r2; c <= r2; c++) {
        const x = a * b0x + b * b1x + c * b2x, y = a * b0y + b * b1y + c * b2y, z = a * b0z + b * b1z + c * b2z;
        const d2 = x * x + y * y + z * z;
        if (d2 > limit2) continue;
        const d = Math.sqrt(d2);
        if (!(d > 1e-8 && d <= rMax)) continue;
        const bin = Math.floor((d * bins) / rMax);
        selfBins.push(bin < bins ? bin : bins - 1);
      }
    }
  }
  if (selfBins.length > 0) {
    const atomsOfClass = new Float64Array(classCount);
    for (let i = 0; i < n; i++) atomsOfClass[atomClass[i]]++;
    for (let k = 0; k < classCount; k++) {
      if (atomsOfClass[k] === 0) continue;
      const base = blockOf[k * classCount + k] * bins;
      for (const bin of selfBins) counts[base + bin] += atomsOfClass[k];
    }
    total += n * selfBins.length;
  }
  let fractions = fractional;
  if (!(periodic[0] && periodic[1] && periodic[2])) {
    fractions = fractional.slice(0, 3 * n);
    for (let p = 0; p < 3 * n; p++) fractions[p] *= mask[p % 3];
  }
  pairKernel ??= new PairCountKernel();
  const params = Float64Array.of(b0x, b0y, b0z, b1x, b1y, b1z, b2x, b2y, b2z, s0, s1, s2, rMax, limit2, bins);
  total += pairKernel.count(params, positions, fractions, atomClass, n, classCount, blockOf, counts, bins);
  return total;
}

interface CellGrid {
  counts: [number, number, number];
  /** Lower fractional coordinate and bin height (in fractional units) per direction. */
  origin: [number, number, number];
  width: [number, number, number];
  /** Lexicographically positive bin offsets (dx, dy, dz) that can hold atoms within r_max. */
  offsets: Int32Array[];
}

function cellGrid(geometry: PairGeometry, rMax: number): CellGrid {
  const { n, fractional, heights, periodic } = geometry;
  const counts: [number, number, number] = [1, 1, 1];
  const origin: [number, number, number] = [0, 0, 0];
  const extent: [number, number, number] = [1, 1, 1];
  for (let k = 0; k < 3; k++) {
    if (!periodic[k]) {
      let lo = Infinity, hi = -Infinity;
      for (let i = 0; i < n; i++) {
        lo = Math.min(lo, fractional[3 * i + k]);
        hi = Math.max(hi, fractional[3 * i + k]);
      }
      origin[k] = n > 0 ? lo : 0;
      extent[k] = n > 0 ? Math.max(hi - lo, 0) : 0;
    }
    const length = extent[k] * heights[k];
    counts[k] = Math.max(1, Math.floor(length / (rMax / 2 + 1e-6)));
  }
  // Never more bins than a few per atom (sparse molecules, vacuum).
  while (counts[0] * counts[1] * counts[2] > 2 * n + 8) {
    const k = counts[0] >= counts[1] && counts[0] >= counts[2] ? 0 : counts[1] >= counts[2] ? 1 : 2;
    counts[k] = Math.ceil(counts[k] / 2);
  }
  const width: [number, number, number] = [0, 0, 0];
  const reach: [number, number, number] = [0, 0, 0];
  const binHeight: [number, number, number] = [0, 0, 0];
  for (let k = 0; k < 3; k++) {
    width[k] = extent[k] / counts[k];
    binHeight[k] = width[k] * heights[k];
    if (periodic[k]) reach[k] = Math.ceil((rMax * (1 + RANGE_SLACK) + 1e-9) / binHeight[k]);
    else reach[k] = counts[k] > 1 ? Math.min(counts[k] - 1, Math.ceil((rMax * (1 + RANGE_SLACK) + 1e-9) / binHeight[k])) : 0;
  }
  const offsets: Int32Array[] = [];
  for (let a = 0; a <= reach[0]; a++) {
    for (let b = -reach[1]; b <= reach[1]; b++) {
      for (let c = -reach[2]; c <= reach[2]; c++) {
        if (!(a > 0 || (a === 0 && (b > 0 || (b === 0 && c > 0))))) continue;
        // Atoms |o| - 1 bins apart along a reciprocal direction are at least that many bin heights apart.
        let gap = 0;
        const o = [a, b, c];
        for (let k = 0; k < 3; k++) gap = Math.max(gap, (Math.abs(o[k]) - 1) * binHeight[k]);
        if (gap <= rMax * (1 + RANGE_SLACK)) offsets.push(Int32Array.of(a, b, c));
      }
    }
  }
  return { counts, origin, width, offsets };
}

function countByCells(context: CountContext): number {
  const { geometry, rMax, atomClass, classCount, blockOf } = context;
  const { n, positions, fractional, basis, periodic } = geometry;
  const grid = cellGrid(geometry, rMax);
  const [n0, n1, n2] = grid.counts;
  const binCount = n0 * n1 * n2;
  const binOf = new Int32Array(n);
  const start = new Int32Array(binCount + 1);
  for (let i = 0; i < n; i++) {
    let bin = 0;
    for (let k = 0; k < 3; k++) {
      const width = grid.width[k];
      let index = width > 0 ? Math.floor((fractional[3 * i + k] - grid.origin[k]) / width) : 0;
      if (index < 0) index = 0;
      if (index >= grid.counts[k]) index = grid.counts[k] - 1;
      bin = bin * grid.counts[k] + index;
    }
    binOf[i] = bin;
    start[bin + 1]++;
  }
  for (let b = 0; b < binCount; b++) start[b + 1] += start[b];
  const members = new Int32Array(n);
  const fill = start.slice(0, binCount);
  for (let i = 0; i < n; i++) members[fill[binOf[i]]++] = i;

  const limit2 = rMax * rMax * (1 + RANGE_SLACK);
  let total = 0;
  // Pairs (i in `from`, j in `to` moved by the lattice shift s): (r_j - r_i) + s, rounded like countByPairs.
  const pairsBetween = (from: number, to: number, sx: number, sy: number, sz: number, sameBin: boolean): void => {
    for (let p = start[from]; p < start[from + 1]; p++) {
      const i = members[p];
      const xi = positions[3 * i], yi = positions[3 * i + 1], zi = positions[3 * i + 2];
      for (let q = sameBin ? p + 1 : start[to]; q < start[to + 1]; q++) {
        const j = members[q];
        const x = positions[3 * j] - xi + sx, y = positions[3 * j + 1] - yi + sy, z = positions[3 * j + 2] - zi + sz;
        const d2 = x * x + y * y + z * z;
        if (d2 <= limit2) total += record(context, d2, blockOf[atomClass[i] * classCount + atomClass[j]]);
      }
    }
  };
  for (let b0 = 0; b0 < n0; b0++) {
    for (let b1 = 0; b1 < n1; b1++) {
      for (let b2 = 0; b2 < n2; b2++) {
        const from = (b0 * n1 + b1) * n2 + b2;
        if (start[from] === start[from + 1]) continue;
        pairsBetween(from, from, 0, 0, 0, true);
        for (const offset of grid.offsets) {
          const target = [b0 + offset[0], b1 + offset[1], b2 + offset[2]];
          const shift = [0, 0, 0];
          let inside = true;
          for (let k = 0; k < 3; k++) {
            const count = grid.counts[k];
            if (periodic[k]) {
              shift[k] = Math.floor(target[k] / count);
              target[k] -= shift[k] * count;
            } else if (target[k] < 0 || target[k] >= count) {
              inside = false;
            }
          }
          if (!inside) continue;
          const to = (target[0] * n1 + target[1]) * n2 + target[2];
          if (start[to] === start[to + 1]) continue;
          const sx = shift[0] * basis[0] + shift[1] * basis[3] + shift[2] * basis[6];
          const sy = shift[0] * basis[1] + shift[1] * basis[4] + shift[2] * basis[7];
          const sz = shift[0] * basis[2] + shift[1] * basis[5] + shift[2] * basis[8];
          pairsBetween(from, to, sx, sy, sz, false);
        }
      }
    }
  }
  return total;
}

/** Basis rows: cell vectors along periodic directions, orthonormal completions along the others. */
function completedBasis(cell: Float64Array, periodic: readonly boolean[]): Float64Array {
  const basis = new Float64Array(9);
  const vector = (k: number): number[] => [cell[3 * k], cell[3 * k + 1], cell[3 * k + 2]];
  const norm = (v: number[]): number => Math.hypot(v[0], v[1], v[2]);
  const cross = (u: number[], v: number[]): number[] => [
    u[1] * v[2] - u[2] * v[1],
    u[2] * v[0] - u[0] * v[2],
    u[0] * v[1] - u[1] * v[0],
  ];
  const unit = (v: number[]): number[] => {
    const l = norm(v);
    return [v[0] / l, v[1] / l, v[2] / l];
  };
  const periodicAxes = [0, 1, 2].filter((k) => periodic[k]);
  const freeAxes = [0, 1, 2].filter((k) => !periodic[k]);
  for (const k of periodicAxes) {
    if (!(norm(vector(k)) > 0)) throw new GeometryError(`pbc is true along cell vector ${k + 1} but that vector is zero`);
  }
  let completion: number[][] = [];
  if (periodicAxes.length === 0) {
    completion = [[1, 0, 0], [0, 1, 0], [0, 0, 1]];
  } else if (periodicAxes.length === 1) {
    const a = vector(periodicAxes[0]);
    const abs = a.map(Math.abs);
    const least = abs[0] <= abs[1] && abs[0] <= abs[2] ? 0 : abs[1] <= abs[2] ? 1 : 2;
    const e = [0, 0, 0];
    e[least] = 1;
    const first = unit(cross(a, e));
    completion = [first, unit(cross(a, first))];
  } else if (periodicAxes.length === 2) {
    const a = vector(periodicAxes[0]);
    const b = vector(periodicAxes[1]);
    const normal = cross(a, b);
    if (!(norm(normal) > 1e-10 * norm(a) * norm(b))) {
      throw new GeometryError("the two periodic cell vectors are parallel");
    }
    completion = [unit(normal)];
  } else {
    const [a, b, c] = [vector(0), vector(1), vector(2)];
    const volume = Math.abs(a[0] * (b[1] * c[2] - b[2] * c[1]) - a[1] * (b[0] * c[2] - b[2] * c[0]) + a[2] * (b[0] * c[1] - b[1] * c[0]));
    if (!(volume > 1e-10 * norm(a) * norm(b) * norm(c))) throw new GeometryError("the cell is singular (zero volume)");
  }
  for (const k of periodicAxes) basis.set(vector(k), 3 * k);
  freeAxes.forEach((k, m) => basis.set(completion[m], 3 * k));
  return basis;
}

/** Inverse of a 3x3 row-major matrix. */
function invert3(m: Float64Array): Float64Array {
  const [a, b, c, d, e, f, g, h, i] = m;
  const A = e * i - f * h, B = -(d * i - f * g), C = d * h - e * g;
  const det = a * A + b * B + c * C;
  return Float64Array.of(
    A / det, -(b * i - c * h) / det, (b * f - c * e) / det,
    B / det, (a * i - c * g) / det, -(a * f - c * d) / det,
    C / det, -(a * h - b * g) / det, (a * e - b * d) / det,
  );
}
